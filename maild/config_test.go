package maild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/route"
)

// check is the former checkMailConfig: Check, for the errors only.
func check(path string) error {
	_, err := Check(path, testProtocols)
	return err
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIMAPConfigIssueFile(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.IMAPIssue)
	if err := check(path); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, CommandIMAP, testProtocols)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if s.TLS.Cert != filepath.Join(dir, "server.crt") || s.Routes.RoutesFile != filepath.Join(dir, "routes.yaml") || s.BackendTLS.CA != filepath.Join(dir, "backend-ca.crt") {
		t.Fatalf("relative paths not resolved against %s: %+v", dir, s)
	}
	if len(s.Listen) != 2 || s.Listen[0].TLS || !s.Listen[1].TLS {
		t.Fatalf("listeners: %+v", s.Listen)
	}
	if s.DrainTimeout != DefaultDrainTimeout || s.Penalty != nil {
		t.Fatalf("defaults: drain %v penalty %+v", s.DrainTimeout, s.Penalty)
	}
	// The account is lower-cased unless the config says as_is: the one
	// Dovecot (%Lu) and Cyrus log in.
	if s.Accounts.Format != gateway.FormatLowercase {
		t.Fatalf("username_format by default: %q, want lowercase", s.Accounts.Format)
	}
	asIs := configtest.WriteConfig(t, configtest.IMAPIssue+"username_format: as_is\n")
	if s, err := Load(asIs, CommandIMAP, testProtocols); err != nil || s.Accounts.Format != gateway.FormatAsIs {
		t.Fatalf("username_format: as_is: %q, %v", s.Accounts.Format, err)
	}
}

func TestIMAPConfigAllFields(t *testing.T) {
	path := configtest.WriteConfig(t, `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1144
    accept_proxy: true
    trusted_proxies: [10.0.0.0/8, 127.0.0.1]
tls:
  cert: server.crt
  key: server.key
backend_tls:
  ca: backend-ca.crt
  server_name: imap.internal
routes_file: routes.yaml
allow_plaintext_auth: true
oauth: true
imap4rev2: false
hostname: mail.example.com
greeting: hello
login_timeout: 30s
max_login_failures: 5
max_connections: 1000
max_connections_per_ip: 20
auth_penalty:
  base: 1s
  max: 8s
  forget: 30m
dial_timeout: 3s
backend_timeout: 20s
idle_timeout: 30m
max_lifetime: 24h
half_close_linger: 10s
drain_timeout: 1m
metrics_addr: 127.0.0.1:9143
log:
  format: json
  level: debug
`)
	if err := check(path); err != nil {
		t.Fatal(err)
	}
	s, _ := Load(path, CommandIMAP, testProtocols)
	if s.LoginTimeout != 30*time.Second || s.Penalty.Max != 8*time.Second || !s.Listen[1].AcceptProxy || len(s.Listen[1].Trusted) != 2 || s.MaxConnectionsPerIP != 20 {
		t.Fatalf("settings: %+v", s)
	}
}

// TestIMAPConfigErrors: every message names the file, the line and the
// field, and says what is wrong.
func TestIMAPConfigErrors(t *testing.T) {
	cases := []configErrorCase{
		{"unknown top field", configtest.IMAPIssue + "routes_fiel: x\n", []string{":11: routes_fiel: unknown field (want one of:", "routes_file"}},
		{"unknown listener field", strings.Replace(configtest.IMAPIssue, "    tls: true", "    tls: true\n    proxy: true", 1), []string{":5: listen[1].proxy: unknown field", "accept_proxy"}},
		{"bad duration", configtest.IMAPIssue + "login_timeout: soon\n", []string{":11: login_timeout: invalid duration \"soon\""}},
		{"negative", configtest.IMAPIssue + "max_connections: -1\n", []string{":11: max_connections: -1: must not be negative"}},
		{"metrics port", configtest.IMAPIssue + "metrics_addr: \"127.0.0.1:99999\"\n", []string{":11: metrics_addr: \"127.0.0.1:99999\": port \"99999\" is not a number from 0 to 65535"}},
		{"metrics host", configtest.IMAPIssue + "metrics_addr: \"metrics.example:9100\"\n", []string{":11: metrics_addr: \"metrics.example:9100\": host must be an IP address"}},
		{"wrong type", configtest.IMAPIssue + "max_login_failures: many\n", []string{":11: max_login_failures: want a whole number, not \"many\""}},
		{"bad addr", strings.Replace(configtest.IMAPIssue, "127.0.0.1:1143", "127.0.0.1", 1), []string{":2: listen[0].addr: \"127.0.0.1\": want HOST:PORT"}},
		{"no listen", "routes_file: routes.yaml\n", []string{"listen: missing"}},
		{"no routes", "listen:\n  - addr: 127.0.0.1:1143\n", []string{"routes_file: missing"}},
		{"tls listener without tls", "listen:\n  - addr: 127.0.0.1:1993\n    tls: true\nroutes_file: routes.yaml\n", []string{":3: listen[0].tls: implicit TLS needs the tls: section"}},
		{"proxy without trusted", "listen:\n  - addr: 127.0.0.1:1143\n    accept_proxy: true\nroutes_file: routes.yaml\n", []string{"listen[0].trusted_proxies: accept_proxy needs"}},
		{"bad cidr", "listen:\n  - addr: 127.0.0.1:1143\n    accept_proxy: true\n    trusted_proxies: [10.0.0.0/33]\nroutes_file: routes.yaml\n", []string{":4: listen[0].trusted_proxies[0]:"}},
		{"log level", configtest.IMAPIssue + "log:\n  level: loud\n", []string{":12: log.level: unknown level \"loud\""}},
		{"penalty order", configtest.IMAPIssue + "auth_penalty:\n  base: 10s\n  max: 1s\n", []string{":13: auth_penalty.max: 1s is less than base 10s"}},
		{"yaml syntax", configtest.IMAPIssue + "listen: [\n", []string{"imap.yaml:"}},
		{"missing cert file", strings.Replace(configtest.IMAPIssue, "cert: server.crt", "cert: nope.crt", 1), []string{":6: tls.cert: open ", "nope.crt: no such file"}},
		{"missing routes file", strings.Replace(configtest.IMAPIssue, "routes_file: routes.yaml", "routes_file: nope.yaml", 1), []string{":10: routes_file: route/file: open ", "nope.yaml"}},
		{"redis without addr", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    db: 1\n", []string{":12: auth_penalty.redis.addr: missing"}},
		{"redis unknown field", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    host: x\n", []string{":13: auth_penalty.redis.host: unknown field (want one of: addr, db, password_file, prefix, tls, url)"}},
		{"route source type", configtest.IMAPIssue + "route_sources:\n  - type: gopher\n", []string{":12: route_sources[0].type: \"gopher\""}},
		{"route source field", configtest.IMAPIssue + "route_sources:\n  - type: file\n    path: routes.yaml\n    url: http://x\n", []string{":14: route_sources[0].url: not a field of type file"}},
		{"route source file missing", "listen:\n  - addr: 127.0.0.1:1143\nroute_sources:\n  - type: file\n    path: gone.yaml\n", []string{":5: route_sources[0].path: open ", "gone.yaml"}},
		{"redis addr without port", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    addr: 127.0.0.1\n", []string{":13: auth_penalty.redis.addr: \"127.0.0.1\": want HOST:PORT"}},
		{"redis negative db", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    addr: 127.0.0.1:6379\n    db: -1\n", []string{":14: auth_penalty.redis.db: -1: must not be negative"}},
		{"redis password file missing", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    addr: 127.0.0.1:6379\n    password_file: gone.pass\n", []string{":14: auth_penalty.redis.password_file: open ", "gone.pass"}},
		{"redis url and addr", configtest.IMAPIssue + "auth_penalty:\n  redis:\n    addr: 127.0.0.1:6379\n    password_file: routes.yaml\n    url: redis://x\n", []string{":13: auth_penalty.redis.addr: give url or addr, not both"}},
		{"client_ca", strings.Replace(configtest.IMAPIssue, "  key: server.key", "  key: server.key\n  client_ca: backend-ca.crt", 1), []string{":8: tls.client_ca: not supported"}},
		{"tls without key", strings.Replace(configtest.IMAPIssue, "  key: server.key\n", "", 1), []string{":5: tls.key: missing"}},
		{"bad duration in penalty", configtest.IMAPIssue + "auth_penalty:\n  base: -1s\n", []string{":12: auth_penalty.base: negative duration \"-1s\""}},
		{"username_chars with LF", configtest.IMAPIssue + "username_chars: \"a\\nb\"\n", []string{":11: username_chars: must not hold"}},
		{"username_format", configtest.IMAPIssue + "username_format: upper\n", []string{":11: username_format: unknown format \"upper\""}},
		{"default_domain with @", configtest.IMAPIssue + "default_domain: \"@a.test\"\n", []string{":11: default_domain: \"@a.test\": a domain, without '@'"}},
		{"empty file", "# nothing\n", []string{": empty file"}},
		{"drain spread", configtest.IMAPIssue + "drain_timeout: 10s\ndrain_spread: 20s\n", []string{":12: drain_spread: 20s: want 0 (close at the deadline) up to drain_timeout (10s)"}},
		{"login trusted networks", configtest.IMAPIssue + "login_trusted_networks: [10.0.0.0/8, 10.0.0.0/33]\n", []string{":11: login_trusted_networks[1]: \"10.0.0.0/33\" is not an IP address or CIDR prefix"}},
		{"two documents", configtest.IMAPIssue + "---\nlisten: []\n", []string{":12: more than one YAML document"}},
		// One port listened on twice fails at start ("address already in
		// use"), however the two addresses are written.
		{"same address twice", "listen:\n  - addr: 127.0.0.1:1143\n  - addr: 127.0.0.1:1143\nroutes_file: routes.yaml\n",
			[]string{`:3: listen[1].addr: "127.0.0.1:1143": listen[0].addr ("127.0.0.1:1143") listens there too`}},
		{"wildcard and empty host", "listen:\n  - addr: 0.0.0.0:11143\n  - addr: \":11143\"\nroutes_file: routes.yaml\n",
			[]string{`:3: listen[1].addr: ":11143": listen[0].addr ("0.0.0.0:11143") listens there too`}},
		{"wildcard and one address", "listen:\n  - addr: 127.0.0.1:1143\n  - addr: \"[::]:1143\"\nroutes_file: routes.yaml\n",
			[]string{`:3: listen[1].addr: "[::]:1143": listen[0].addr ("127.0.0.1:1143") listens there too`}},
		{"IPv4-mapped", "listen:\n  - addr: 127.0.0.1:1143\n  - addr: \"[::ffff:127.0.0.1]:1143\"\nroutes_file: routes.yaml\n",
			[]string{`:3: listen[1].addr: "[::ffff:127.0.0.1]:1143": listen[0].addr ("127.0.0.1:1143") listens there too`}},
		{"negative cache size", configtest.IMAPIssue + "route_cache:\n  max_entries: -1\n", []string{":12: route_cache.max_entries: -1: must not be negative (0 means the default, 10000)"}},
		{"metrics on a listener", configtest.IMAPIssue + "metrics_addr: \":1993\"\n",
			[]string{`:11: metrics_addr: ":1993": listen[1].addr ("127.0.0.1:1993") listens there too`}},
	}
	checkConfigErrors(t, cases)
}

// TestIMAPConfigListenersApart: listeners on one port but different
// addresses, and any number on port 0 (each gets its own), are no clash.
func TestIMAPConfigListenersApart(t *testing.T) {
	path := configtest.WriteConfig(t, `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.2:1143
  - addr: "[::1]:1143"
  - addr: 127.0.0.1:0
  - addr: 0.0.0.0:0
  - addr: 127.0.0.1:1144
routes_file: routes.yaml
metrics_addr: 127.0.0.3:1143
`)
	if err := check(path); err != nil {
		t.Fatal(err)
	}
}

// configErrorCase is a config that check must refuse, with substrings of
// its error (after "FILE:").
type configErrorCase struct {
	name, config string
	want         []string
}

// checkConfigErrors runs check on each case's config: an error that starts
// with the file's name and holds every wanted substring.
func checkConfigErrors(t *testing.T, cases []configErrorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := configtest.WriteConfig(t, tc.config)
			err := check(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path) {
				t.Errorf("error does not start with the file name %s:\n%s", path, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestIMAPConfigBadRoutesNamesBothFiles(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.IMAPIssue)
	writeTestFile(t, filepath.Join(filepath.Dir(path), "routes.yaml"), "routes:\n  - account: x@y\n    backend: ftp://h:1\n")
	err := check(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "routes.yaml:3") {
		t.Fatalf("want both files and the routes line named, got %v", err)
	}
}

func TestIMAPConfigRouteSources(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.IMAPIssue+`route_sources:
  - type: http
    url: http://127.0.0.1:1/auth
    on_error: next
route_cache:
  positive_ttl: 10s
`)
	if err := check(path); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, CommandIMAP, testProtocols)
	if err != nil {
		t.Fatal(err)
	}
	res, err := openResources(s)
	if err != nil {
		t.Fatal(err)
	}
	defer res.close()
	// routes_file comes first: alice is routed by it without asking http.
	rt, err := res.router.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test"})
	if err != nil || len(rt.Backends) == 0 || rt.Backends[0].Addr != "127.0.0.1:14301" {
		t.Fatalf("lookup: %+v %v", rt, err)
	}
}

func TestMailConfigIssueFile(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.MailIssue)
	writeTestFile(t, filepath.Join(filepath.Dir(path), "routes.yaml"), configtest.MailRoutes)
	s, err := Load(path, CommandMail, testProtocols)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range s.Listen {
		got = append(got, fmt.Sprintf("%s/%v", l.Protocol, l.TLS))
	}
	if want := "imap/false pop3/false pop3/true sieve/false submission/false submission/true"; strings.Join(got, " ") != want {
		t.Fatalf("listeners %s, want %s", strings.Join(got, " "), want)
	}
	// Routes naming every protocol's schemes load: the protocol packages
	// register them, and the protocols' table links them in.
	if kind, err := Check(path, testProtocols); err != nil || kind != CommandMail {
		t.Fatalf("check: %q %v", kind, err)
	}
	// A file with IMAP listeners only is an imap config: both commands run it.
	imapOnly := configtest.WriteConfig(t, configtest.IMAPIssue)
	if kind, err := Check(imapOnly, testProtocols); err != nil || kind != CommandIMAP {
		t.Fatalf("check: %q %v", kind, err)
	}
	if _, err := Load(imapOnly, CommandMail, testProtocols); err != nil {
		t.Fatal(err)
	}
}

// TestMailConfigProtocolErrors: each message names the file, the line and
// the field.
func TestMailConfigProtocolErrors(t *testing.T) {
	cases := []configErrorCase{
		{"unknown protocol", strings.Replace(configtest.MailIssue, "protocol: sieve", "protocol: gopher", 1),
			[]string{":9: listen[3].protocol: \"gopher\": unknown protocol (want one of imap, pop3, sieve, submission)"}},
		{"smtp", strings.Replace(configtest.MailIssue, "protocol: sieve", "protocol: smtp", 1),
			[]string{":9: listen[3].protocol: \"smtp\": unknown protocol", "SMTP submission is protocol: submission"}},
		{"upper case", strings.Replace(configtest.MailIssue, "protocol: sieve", "protocol: SIEVE", 1),
			[]string{":9: listen[3].protocol: \"SIEVE\": unknown protocol"}},
		{"implicit TLS without tls", "listen:\n  - addr: 127.0.0.1:1995\n    protocol: pop3\n    tls: true\nroutes_file: routes.yaml\n",
			[]string{":4: listen[0].tls: implicit TLS needs the tls: section"}},
		{"unknown pop3 option", configtest.MailIssue + "pop3:\n  greting: hi\n", []string{":22: pop3.greting: unknown field"}},
		{"greeting on two lines", configtest.MailIssue + "submission:\n  greeting: \"a\\r\\nb\"\n", []string{":22: submission.greeting: \"a\\r\\nb\": must be one line"}},
		{"capability on two lines", configtest.MailIssue + "pop3:\n  capabilities: [TOP, \"UIDL\\nX\"]\n", []string{":22: pop3.capabilities[1]: "}},
	}
	checkConfigErrors(t, cases)
}

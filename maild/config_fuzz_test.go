package maild

import (
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/yamlconf"
)

// configBadSeeds have problems, each at its line.
var configBadSeeds = []string{
	"# nothing\n",
	configtest.IMAPIssue + "routes_fiel: x\nlogin_timeout: soon\nmax_connections: -1\nmax_login_failures: many\nlog:\n  level: loud\n",
	strings.Replace(configtest.IMAPIssue, "127.0.0.1:1143", "127.0.0.1", 1) + "auth_penalty:\n  base: 10s\n  max: 1s\n  redis: {addr: 127.0.0.1, db: -1, password_file: gone}\n",
	"listen:\n  - addr: 127.0.0.1:1993\n    tls: true\n    accept_proxy: true\n    trusted_proxies: [10.0.0.0/33]\n  - {addr: \"example.com:1\", protocol: smtp}\n  - {addr: 127.0.0.1:1993}\nroutes_file: routes.yaml\n",
	configtest.IMAPIssue + "username_chars: \"a\\nb\"\nusername_format: upper\ndrain_timeout: 10s\ndrain_spread: 20s\nlogin_trusted_networks: [10.0.0.0/8, 10.0.0.0/33]\n",
	configtest.MailIssue + "submission:\n  greeting: \"a\\r\\nb\"\npop3:\n  capabilities: [TOP, \"UIDL\\nX\"]\n",
	configtest.IMAPIssue + "pools:\n  shared:\n    members:\n      - ftp://h:1\n      - pool:other\n      - [a, b]\n      - {name: a, backend: imap://h:1}\n      - {name: b, weight: -1, backends: [imap://h:1]}\n      - {name: c, backends: [imap://h:1, imaps://h:2]}\n",
	configtest.IMAPIssue + "pools:\n  a.b:\n    members: [imap://h:1]\n  s:\n    members: [imap://h:1, imap://h:1]\n    affinity: {store: etcd, balance_factor: 0, redis: {url: http://x}}\n    health: {user: probe, protocol: pop3, on_down: panic}\n",
	configtest.IMAPIssue + "tls:\n  client_ca: ca.crt\nbackend_tls: {cert: client.crt}\nroute_sources:\n  - type: gopher\n  - file\n  - {type: file, pth: x, cache: maybe}\n",
	configtest.IMAPIssue + "---\nlisten: []\n",
	"listen:\n  - addr: !!bool x\nroutes_file: routes.yaml\n", "listen:\n  - addr: 127.0.0.1:1\nroute_sources:\n  - {type: !!int x}\n",
	configtest.IMAPIssue + "pools:\n  p:\n    members: [!!null x, {name: !!float y}]\n", configtest.IMAPIssue + "auth_penalty: !!null {base: 1s}\n",
}

// configSeeds are the tests' good files and the docs' examples that
// name listeners and routes (with the fixture's files): TestLoadFuzzSeeds.
func configSeeds(t testing.TB) []string {
	seeds := []string{configtest.IMAPIssue, configtest.MailIssue, poolsConfig, allFieldsConfig}
	for _, s := range configtest.DocExamples(t, "..") {
		if bytes.HasPrefix(s, []byte("listen:")) && bytes.Contains(s, []byte("routes_file:")) {
			seeds = append(seeds, configtest.FixturePaths(string(s)))
		}
	}
	return seeds
}

// allFieldsConfig sets every field of the file.
const allFieldsConfig = `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1144
    accept_proxy: true
    trusted_proxies: [10.0.0.0/8, 127.0.0.1]
  - {addr: "[::1]:1110", protocol: pop3, tls: true}
  - {addr: ":4190", protocol: sieve}
  - {addr: "localhost:0", protocol: submission}
tls:
  certs:
    - {cert: server.crt, key: server.key}
  ticket_keys: ticket.keys
  curves: [X25519MLKEM768, X25519]
backend_tls:
  ca: ca.crt
  server_name: imap.internal
  cert: client.crt
  key: client.key
  insecure_skip_verify: true
routes_file: routes.yaml
route_sources:
  - {type: http, url: "http://127.0.0.1:1/auth", timeout: 2s, cache: {positive_ttl: 1m}, on_error: next}
  - {type: file, path: routes.yaml}
route_cache: {positive_ttl: 10s, negative_ttl: 1s, max_entries: 10}
allow_plaintext_auth: true
login_trusted_networks: [10.0.0.0/8, "::1"]
oauth: true
imap4rev2: true
hostname: mail.example.com
greeting: hello
pop3: {greeting: POP3 ready, capabilities: [TOP, UIDL]}
sieve: {greeting: hi, implementation: Example Sieve}
submission: {greeting: ready, extensions: ["SIZE 52428800", 8BITMIME]}
login_timeout: 30s
max_login_failures: 5
max_connections: 1000
max_connections_per_ip: 20
max_prelogin_connections_per_ip: 0
username_chars: ""
username_format: lowercase
allow_master_users: true
auth_failure_delay: 0s
tls_on_goroutines: true
auth_penalty:
  base: 1s
  max: 8s
  forget: 30m
  redis: {url: "rediss://127.0.0.1:6380/1", password_file: pw, db: 2, prefix: "p:", tls: {ca: ca.crt}}
dial_timeout: 3s
backend_timeout: 20s
idle_timeout: 30m
max_lifetime: 24h
half_close_linger: 10s
drain_timeout: 1m
drain_spread: 0s
metrics_addr: 127.0.0.1:9143
log:
  format: json
  level: debug
pools:
  shared:
    members:
      - {name: a, backends: [imap://127.0.0.1:14301, pop3://127.0.0.1:11001, sieve://127.0.0.1:4190, submission://127.0.0.1:587]}
      - name: b
        weight: 0
        backends: [imap+starttls://127.0.0.1:14302, pop3s://127.0.0.1:995, sieve+starttls://127.0.0.1:4191, submissions://127.0.0.1:465]
    affinity:
      redis: {addr: 127.0.0.1:6379, db: 0}
      prefix: "a:"
      expire: 15m
      kick_delay: 2s
      settle_delay: 1s
      warm_up: 3s
      outage_grace: 20s
      balance_factor: 10
      instance: me
    health: {interval: 2s, timeout: 5s, fall: 3, rise: 2, protocol: imap, on_down: move, user: probe@a.test, password_file: pw}
`

// FuzzLoad: any file gives settings or an error, never a panic nor a
// goroutine, for both commands; every problem names the file, its line
// and field (configtest.CheckProblems), never a secret read from a
// file; what pipegate imap takes, pipegate mail takes alike; settings
// hold what Load promises (listeners with known protocols on HOST:PORT,
// routes, one-line greetings, a drain spread within the drain timeout,
// pools whose members serve the same protocols); loading again gives the
// same settings or the same error.
func FuzzLoad(f *testing.F) {
	fixture := configtest.Fixture(f)
	configtest.AddSeeds(f, configSeeds(f), configBadSeeds)
	configtest.AddDocExamples(f, "..")
	f.Fuzz(func(t *testing.T, data []byte) {
		configtest.SkipKernelFile(t, data)
		path := configtest.WriteFile(t, fixture, "mail.yaml", data)
		before := configtest.Goroutines()
		mail, err := Load(path, CommandMail, testProtocols)
		again, errAgain := Load(path, CommandMail, testProtocols)
		imap, errIMAP := Load(path, CommandIMAP, testProtocols)
		configtest.CheckNoGoroutine(t, before, "Load")
		configtest.SameErr(t, err, errAgain)
		var lineOf func(string) int
		if doc, err := yamlconf.Decode(path, data, &fileConfig{}); err == nil {
			lineOf = doc.Line
		}
		for _, err := range []error{err, errIMAP} {
			if err != nil {
				configtest.CheckSecretless(t, data, err)
				configtest.CheckProblems(t, path, data, err, lineOf)
			}
		}
		if (mail == nil) == (err == nil) || (imap == nil) == (errIMAP == nil) {
			t.Fatalf("settings and error: %v %v, %v %v", mail != nil, err, imap != nil, errIMAP)
		}
		if err != nil {
			if errIMAP == nil {
				t.Fatalf("pipegate imap takes it, pipegate mail refuses it: %v", err)
			}
			return
		}
		checkSettings(t, path, mail)
		if want := settingsView(mail); !reflect.DeepEqual(settingsView(again), want) {
			t.Fatalf("loaded %+v\nthen %+v", want, settingsView(again))
		}
		if imap != nil {
			checkSettings(t, path, imap)
			imap.Command = CommandMail
			if !reflect.DeepEqual(settingsView(imap), settingsView(mail)) {
				t.Fatalf("imap %+v\nmail %+v", settingsView(imap), settingsView(mail))
			}
		}
	})
}

// TestLoadFuzzSeeds: the good seeds load, so that the fuzzer starts past
// every check.
func TestLoadFuzzSeeds(t *testing.T) {
	fixture := configtest.Fixture(t)
	seeds := configSeeds(t)
	if len(seeds) < 8 {
		t.Fatalf("%d seeds: the docs' examples not found", len(seeds))
	}
	for _, s := range seeds {
		path := configtest.WriteFile(t, fixture, "mail.yaml", []byte(s))
		if _, err := Load(path, CommandMail, testProtocols); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// checkSettings fails t unless s holds what Load promises.
func checkSettings(t *testing.T, file string, s *Settings) {
	t.Helper()
	if s.File != file || len(s.Listen) == 0 || (s.Routes.RoutesFile == "" && len(s.Routes.Sources) == 0) ||
		s.DrainSpread < 0 || s.DrainSpread > s.DrainTimeout || s.MaxConnections < 0 || s.MaxConnectionsPerIP < 0 ||
		s.MaxLoginFailures < 0 || s.MaxPreLoginPerIP < 0 {
		t.Fatalf("settings %+v", s)
	}
	for _, l := range s.Listen {
		_, port, err := net.SplitHostPort(l.Addr)
		if _, known := testProtocols[l.Protocol]; err != nil || port == "" || !known ||
			(s.Command == CommandIMAP && l.Protocol != CommandIMAP) || (l.TLS && s.TLS == nil) || (l.AcceptProxy != (len(l.Trusted) > 0)) {
			t.Fatalf("listener %+v", l)
		}
	}
	for _, text := range append([]string{s.Greeting, s.POP3.Greeting, s.Sieve.Greeting, s.Sieve.Implementation, s.Submission.Greeting},
		append(s.POP3.Capabilities, s.Submission.Extensions...)...) {
		if strings.ContainsFunc(text, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("a text sent to clients is not one printable line: %q", text)
		}
	}
	for _, p := range s.Pools {
		if len(p.Members) == 0 || p.Redis == nil || p.Epsilon < 0 || p.Epsilon > 10 {
			t.Fatalf("pool %+v", p)
		}
		for _, m := range p.Members {
			if len(m.Backends) != len(p.Members[0].Backends) || m.Weight < 0 || m.Name == "" {
				t.Fatalf("pool %s: member %+v, the first %+v", p.Name, m, p.Members[0])
			}
			for proto := range p.Members[0].Backends {
				if _, ok := m.Backends[proto]; !ok {
					t.Fatalf("pool %s: member %s has no %s backend", p.Name, m.Name, proto)
				}
			}
		}
	}
}

// settingsView is s without what reflect.DeepEqual cannot compare: the
// protocols' functions, and the *tls.Config of Redis blocks, summed up.
func settingsView(s *Settings) any {
	c := *s
	c.protocols = nil
	var sums []string
	if c.Penalty != nil {
		p := *c.Penalty
		p.Redis, sums = redisView(p.Redis, sums)
		c.Penalty = &p
	}
	c.Pools = nil
	for _, p := range s.Pools {
		p.Redis, sums = redisView(p.Redis, sums)
		c.Pools = append(c.Pools, p)
	}
	return []any{c, sums}
}

func redisView(o *redis.Options, sums []string) (*redis.Options, []string) {
	if o == nil {
		return nil, append(sums, "none")
	}
	c := *o
	sums = append(sums, configtest.TLSSummary(c.TLSConfig))
	c.TLSConfig = nil
	return &c, sums
}

package config

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/yamlconf"
)

// configSeeds are good routing parts of a daemon's file, naming the
// fixture's files: TestOpenFuzzSeeds.
var configSeeds = []string{
	"routes_file: routes.yaml\n",
	// Connections asked for in advance, which Open must not make.
	"route_sources:\n  - {type: redis, url: \"redis://127.0.0.1:1/0?min_idle_conns=3\"}\n" +
		"  - {type: sql, url: \"postgres://u@127.0.0.1:1/db?sslmode=disable&pool_min_conns=2&pool_min_idle_conns=2\", query: \"SELECT host FROM r WHERE a = $1\"}\n",
	"route_sources:\n  - type: file\n    path: routes.yaml\n  - type: http\n    url: http://127.0.0.1:1/auth\n",
	`routes_file: routes.yaml
route_cache:
  positive_ttl: 1m
  negative_ttl: 10s
  max_entries: 5000
route_sources:
  - type: redis
    url: redis://127.0.0.1:1/0
    password_file: pw
    key: "route:%d:%n"
    lowercase: true
    on_error: next
    timeout: 200ms
  - type: redis
    url: rediss://127.0.0.1:1/0
    tls_ca: ca.crt
    tls_cert: client.crt
    tls_key: client.key
    tls_server_name: redis.internal
  - type: ldap
    urls: [ldap://127.0.0.1:1]
    url: ldaps://127.0.0.1:2
    bind_dn: cn=pipegate,dc=example,dc=org
    bind_password_file: pw
    base_dn: ou=people,dc=example,dc=org
    scope: one
    filter: "(mail=%u)"
    host_attr: mailHost
    port_attr: mailPort
    tls_attr: mailTLS
    server_name_attr: sn
    login_attr: uid
    port: 993
    host_attrs: {submission: submissionHost}
    port_attrs: {pop3: pop3Port}
    ports: {sieve: 4190}
    tls_mode: tls
    tls_ca: ca.crt
    on_error: next
    cache: false
  - type: sql
    url: postgres://pipegate@127.0.0.1:1/mail?sslmode=disable
    password_file: pw
    query: SELECT host, port FROM routes WHERE account = $1
    max_conns: 2
    on_error: next
    cache:
      positive_ttl: 5s
  - type: http
    url: https://127.0.0.1:1/auth
    pass_password: true
    headers: {X-Auth-Key: k}
    tls_ca: ca.crt
    on_error: next
  - type: file
    path: routes.yaml
`,
}

// configBadSeeds are TestErrors' files, with problems.
var configBadSeeds = []string{
	// Several bad map keys in one entry, which must be told in one order.
	"route_sources:\n  - {type: ldap, url: \"ldap://127.0.0.1:1\", base_dn: dc=x, host_attrs: {b: x, a: y, c: z}, ports: {q: 0, p: 0}}\n" +
		"  - {type: http, url: \"http://127.0.0.1:1/\", headers: {\"b c\": x, \"a b\": y, \"d\\te\": z}}\n",
	"route_sources: []\n", "route_sources:\n  - type: mysql\n", "route_sources:\n  - path: x\n",
	"route_sources:\n  - type: file\n    pth: routes.yaml\n",
	"route_sources:\n  - type: file\n    path: routes.yaml\n  - type: http\n    url: http://h/\n    query: x\n    key: y\n",
	"route_sources:\n  - type: file\n    path: nope.yaml\n    timeout: 1s\n    on_error: ignore\n",
	"route_sources:\n  - {type: file, path: routes.yaml, url: x, query: y, key: z, urls: [a]}\n",
	"route_sources:\n  - type: file\n    path: bad.yaml\n",
	"route_sources:\n  - type: http\n  - type: http\n    url: ftp://x\n  - type: http\n    url: http://x/\n    tls_ca: ca.crt\n",
	"route_sources:\n  - type: http\n    url: https://x/\n    tls_ca: nope.pem\n    tls_cert: client.crt\n",
	"route_sources:\n  - type: redis\n    url: redis://127.0.0.1:6379\n    key: \"r:%q\"\n    password_file: empty\n",
	"route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    backend_attr: b\n    host_attrs: {submission: smtpHost}\n    ports: {pop3: 0}\n    filter: \"(mail=%u\"\n",
	"route_sources:\n  - type: sql\n    url: postgres://h/db\n    password_file: empty\n",
	"route_sources:\n  - type: http\n    url: http://x/\n    timeout: 5\n    cache: {ttl: 1s}\n  - file\nroute_cache: maybe\n",
	"routes_file: gone.yaml\n", "route_cache: {max_entries: 1}\n",
	"route_sources:\n  - {type: file, path: !!int x}\n", "route_sources:\n  - !!null {type: file}\n",
	"route_sources:\n  - {type: http, url: \"http://127.0.0.1:1/\", cache: !!null {max_entries: 1}}\n",
	"route_sources:\n  - &s {type: http, url: \"http://127.0.0.1:1/\"}\n  - *s\n",
}

// FuzzOpen: the routing part of a daemon's file, loaded as maild loads
// it (yamlconf, then Open), gives Routes or an error, never a panic, and
// Open connects nowhere: it starts no goroutine but pgx's pool's health
// check (a sql source's, ended by Close). yamlconf's problems name the
// file and line (configtest.CheckProblems); Open's are *FieldError
// naming the entry of route_sources (Index) and the line of its field or
// of the entry, or routes_file (Index -1), for maild to prefix with the
// file; no message holds a secret read from a password file; opening
// again fails alike, with the same text.
func FuzzOpen(f *testing.F) {
	fixture := configtest.Fixture(f)
	configtest.AddSeeds(f, configSeeds, configBadSeeds)
	for _, s := range configtest.DocExamples(f, "../..") {
		if bytes.HasPrefix(s, []byte("- type:")) { // a route_sources entry
			s = append([]byte("route_sources:\n  "), bytes.ReplaceAll(bytes.TrimSuffix(s, []byte("\n")), []byte("\n"), []byte("\n  "))...)
		}
		f.Add(s)
		f.Add([]byte(configtest.FixturePaths(string(s))))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		configtest.SkipKernelFile(t, data)
		file := configtest.WriteFile(t, fixture, "pipegate.yaml", data)
		var c daemonConfig
		doc, err := yamlconf.Load(file, &c)
		if err != nil {
			configtest.CheckSecretless(t, data, err)
			configtest.CheckProblems(t, file, data, err, nil)
			return
		}
		spec := Spec{Dir: doc.Dir, RoutesFile: c.RoutesFile, Sources: c.RouteSources, Cache: c.RouteCache}
		before := configtest.Goroutines(pgxHealthCheck)
		r, err := Open(context.Background(), spec)
		configtest.CheckNoGoroutine(t, before, "Open", pgxHealthCheck)
		if r != nil {
			defer r.Close()
		}
		r2, err2 := Open(context.Background(), spec)
		if r2 != nil {
			r2.Close()
		}
		if (r == nil) == (err == nil) {
			t.Fatalf("Routes and error: %v, %v", r != nil, err)
		}
		configtest.SameErr(t, err, err2)
		if err == nil {
			if c.RoutesFile != "" && r.Rules() == 0 {
				t.Fatalf("routes_file %s loaded without rules", c.RoutesFile)
			}
			return
		}
		configtest.CheckSecretless(t, data, err)
		max := configtest.MaxLine(data)
		for _, p := range configtest.Problems(err) {
			fe, ok := p.(*FieldError)
			switch {
			case !ok:
				t.Fatalf("problem %q is a %T, not a *FieldError", p, p)
			case fe.Index == -1:
				if fe.Line != 0 || fe.Field != "" || fe.Key() != "routes_file" {
					t.Fatalf("routes_file problem %+v", fe)
				}
			case fe.Index < 0 || fe.Index >= len(c.RouteSources):
				t.Fatalf("problem %q: entry %d of %d", p, fe.Index, len(c.RouteSources))
			case fe.Line < c.RouteSources[fe.Index].Line || fe.Line > max:
				t.Fatalf("problem %q: line %d, the entry's is %d, the file's last %d", p, fe.Line, c.RouteSources[fe.Index].Line, max)
			case !strings.HasPrefix(p.Error(), fmt.Sprintf("route_sources[%d] (line %d)", fe.Index, fe.Line)):
				t.Fatalf("problem %q does not start with its entry and line", p)
			}
		}
	})
}

// TestOpenFuzzSeeds: the good seeds open, so that the fuzzer starts past
// every check.
func TestOpenFuzzSeeds(t *testing.T) {
	fixture := configtest.Fixture(t)
	for _, s := range configSeeds {
		dir := configtest.Dir(t, fixture)
		var c daemonConfig
		if _, err := yamlconf.Decode(filepath.Join(dir, "pipegate.yaml"), []byte(s), &c); err != nil {
			t.Fatal(err)
		}
		r, err := Open(context.Background(), Spec{Dir: dir, RoutesFile: c.RoutesFile, Sources: c.RouteSources, Cache: c.RouteCache})
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		r.Close()
	}
}

// pgxHealthCheck names the creator of pgx's pool's health check, which a
// sql source starts without connecting and Close ends.
const pgxHealthCheck = "github.com/jackc/pgx/v5/pgxpool."

package config

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// daemonConfig is the part of pipegate's config that holds the sources.
type daemonConfig struct {
	RoutesFile   string         `yaml:"routes_file"`
	RouteSources []SourceConfig `yaml:"route_sources"`
	RouteCache   CacheConfig    `yaml:"route_cache"`
}

func decode(t *testing.T, text string) (daemonConfig, error) {
	t.Helper()
	var c daemonConfig
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// authService answers OK for alice@a.test and counts its calls.
func authService(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Auth-User") != "alice@a.test" {
			w.Header().Set("Auth-Status", "Invalid login or password")
			w.Header().Set("Auth-Wait", "2")
			return
		}
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "14399")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func lookup(r route.Router, account string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := r.Lookup(ctx, route.Request{Protocol: "imap", Account: account})
	if err != nil {
		return "", err
	}
	return rt.Backends[0].String(), nil
}

func TestIssueShapeAndChain(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", "routes:\n  - account: bob@a.test\n    backend: imap://127.0.0.1:14301\n")
	auth, _ := authService(t)
	c, err := decode(t, `
route_sources:
  - type: file
    path: routes.yaml
  - type: http
    url: `+auth.URL+`/auth
`)
	if err != nil {
		t.Fatal(err)
	}
	r, reload, closeAll, err := Build(context.Background(), dir, c.RouteSources, c.RouteCache)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if got, err := lookup(r, "bob@a.test"); err != nil || got != "imap://127.0.0.1:14301" {
		t.Errorf("bob (file): %s %v", got, err)
	}
	if got, err := lookup(r, "alice@a.test"); err != nil || got != "imap://127.0.0.1:14399" {
		t.Errorf("alice (http after the file said not found): %s %v", got, err)
	}
	var d *route.Denied
	if _, err := lookup(r, "mallory@a.test"); !errors.As(err, &d) || d.Wait != 2*time.Second {
		t.Errorf("mallory: err = %v, want denied", err)
	}

	// Reload picks up the new file; a broken file keeps the old table.
	writeFile(t, dir, "routes.yaml", "routes:\n  - account: bob@a.test\n    backend: imap://127.0.0.1:15555\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if got, _ := lookup(r, "bob@a.test"); got != "imap://127.0.0.1:15555" {
		t.Errorf("after reload: %s", got)
	}
	writeFile(t, dir, "routes.yaml", "routes: [\n")
	if err := reload(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "routes.yaml")) {
		t.Errorf("reload of a broken file: %v", err)
	}
	if got, _ := lookup(r, "bob@a.test"); got != "imap://127.0.0.1:15555" {
		t.Errorf("after a failed reload: %s", got)
	}
}

func TestAllTypesBuild(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:14301\n")
	writeFile(t, dir, "pw", "secret\n")
	c, err := decode(t, `
route_cache:
  positive_ttl: 1m
  negative_ttl: 10s
  max_entries: 5000
route_sources:
  - type: redis
    url: redis://127.0.0.1:1/0
    key: "route:%d:%n"
    lowercase: true
    on_error: next
    timeout: 200ms
  - type: ldap
    urls: [ldap://127.0.0.1:1]
    bind_dn: cn=pipegate,dc=example,dc=org
    bind_password_file: pw
    base_dn: ou=people,dc=example,dc=org
    filter: "(mail=%u)"
    host_attr: mailHost
    host_attrs: {submission: submissionHost}
    port_attrs: {pop3: pop3Port}
    ports: {sieve: 4190}
    tls_mode: tls
    on_error: next
    cache: false
  - type: sql
    url: postgres://pipegate@127.0.0.1:1/mail?sslmode=disable
    password_file: pw
    query: SELECT host, port FROM routes WHERE account = $1
    on_error: next
    cache:
      positive_ttl: 5s
  - type: http
    url: http://127.0.0.1:1/auth
    pass_password: true
    headers: {X-Auth-Key: k}
    on_error: next
  - type: file
    path: routes.yaml
`)
	if err != nil {
		t.Fatal(err)
	}
	r, _, closeAll, err := Build(context.Background(), dir, c.RouteSources, c.RouteCache)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	// Every remote source is down (port 1); each is "on_error: next", so the file answers.
	if got, err := lookup(r, "alice@a.test"); err != nil || got != "imap://127.0.0.1:14301" {
		t.Fatalf("%s %v", got, err)
	}
}

func TestSourceDownIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:14301\n")
	c, err := decode(t, "route_sources:\n  - type: http\n    url: http://127.0.0.1:1/auth\n  - type: file\n    path: routes.yaml\n")
	if err != nil {
		t.Fatal(err)
	}
	r, _, closeAll, err := Build(context.Background(), dir, c.RouteSources, c.RouteCache)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	_, err = lookup(r, "alice@a.test")
	var d *route.Denied
	if err == nil || errors.Is(err, route.ErrNotFound) || errors.As(err, &d) {
		t.Fatalf("err = %v, want an error (NO [UNAVAILABLE])", err)
	}
}

func TestHTTPCacheOnlyWhenAsked(t *testing.T) {
	auth, calls := authService(t)
	for _, tt := range []struct {
		yaml  string
		calls int32
	}{
		{"route_sources:\n  - type: http\n    url: " + auth.URL + "\n", 3},
		{"route_sources:\n  - type: http\n    url: " + auth.URL + "\n    cache: true\n", 1},
	} {
		calls.Store(0)
		c, err := decode(t, tt.yaml)
		if err != nil {
			t.Fatal(err)
		}
		r, reload, closeAll, err := Build(context.Background(), t.TempDir(), c.RouteSources, c.RouteCache)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := lookup(r, "alice@a.test"); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != tt.calls {
			t.Errorf("%q: %d calls for 3 lookups, want %d", tt.yaml, calls.Load(), tt.calls)
		}
		if err := reload(); err != nil { // empties the cache
			t.Fatal(err)
		}
		before := calls.Load()
		if _, err := lookup(r, "alice@a.test"); err != nil || calls.Load() != before+1 {
			t.Errorf("after reload: %d calls, want %d", calls.Load(), before+1)
		}
		closeAll()
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:14301\n")
	writeFile(t, dir, "bad.yaml", "routes:\n  - account: a@a.test\n    backend: nope://x\n")
	writeFile(t, dir, "pw", "secret\n")
	writeFile(t, dir, "empty", "")
	tests := []struct{ name, yaml, want string }{
		{"empty list", "route_sources: []\n", "route_sources: empty"},
		{"unknown type", "route_sources:\n  - type: mysql\n", "route_sources[0] (line 2).type: \"mysql\": want one of file, http, ldap, redis, sql"},
		{"missing type", "route_sources:\n  - path: x\n", `route_sources[0] (line 2).type: ""`},
		{"unknown field", "route_sources:\n  - type: file\n    pth: routes.yaml\n", "line 3: pth: unknown field (want one of: backend_attr, "},
		{"field of another type", "route_sources:\n  - type: file\n    path: routes.yaml\n  - type: http\n    url: http://h/\n    query: x\n",
			"route_sources[1] (line 6).query: not a field of type http"},
		{"file not found", "route_sources:\n  - type: file\n    path: nope.yaml\n", "route_sources[0] (line 3).path: open " + filepath.Join(dir, "nope.yaml") + ": no such file"},
		{"file broken", "route_sources:\n  - type: file\n    path: bad.yaml\n", "route_sources[0] (line 3).path: " + filepath.Join(dir, "bad.yaml") + ":3: routes[0].backend:"},
		{"file with timeout", "route_sources:\n  - type: file\n    path: routes.yaml\n    timeout: 1s\n", "takes no timeout"},
		{"http no url", "route_sources:\n  - type: http\n", "route_sources[0] (line 2).url: empty"},
		{"http bad url", "route_sources:\n  - type: http\n    url: ftp://x\n", "route_sources[0] (line 3).url: url \"ftp://x\": want http://"},
		{"tls without TLS", "route_sources:\n  - type: http\n    url: http://x/\n    tls_ca: ca.pem\n", "does not use TLS"},
		{"tls CA missing", "route_sources:\n  - type: http\n    url: https://x/\n    tls_ca: ca.pem\n", "route_sources[0] (line 4).tls_ca:"},
		{"redis bad key", "route_sources:\n  - type: redis\n    url: redis://127.0.0.1:6379\n    key: \"r:%q\"\n", "route_sources[0] (line 4).key: template"},
		{"ldap no base", "route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    host_attr: mailHost\n", "route_sources[0] (line 2).base_dn: empty"},
		{"ldap bad filter", "route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    host_attr: mailHost\n    filter: \"(mail=%u\"\n", "route_sources[0] (line 6).filter:"},
		{"ldap bad per-protocol port", "route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    host_attr: mailHost\n    ports: {pop3: 0}\n", "route_sources[0] (line 6).ports: pop3: 0: want a protocol name and a port"},
		{"ldap ports with backend_attr", "route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    backend_attr: b\n    host_attrs: {submission: smtpHost}\n", "route_sources[0] (line 6).host_attrs: goes with host_attr"},
		{"sql no query", "route_sources:\n  - type: sql\n    url: postgres://h/db\n", "route_sources[0] (line 2).query: empty"},
		{"bad on_error", "route_sources:\n  - type: file\n    path: routes.yaml\n    on_error: ignore\n", "route_sources[0] (line 4).on_error"},
		{"bad duration", "route_sources:\n  - type: http\n    url: http://x/\n    timeout: 5\n", "line 4: timeout: invalid duration \"5\""},
		{"bad cache", "route_sources:\n  - type: http\n    url: http://x/\n    cache: {ttl: 1s}\n", "line 4: cache.ttl: unknown field (want one of: max_entries, negative_ttl, positive_ttl)"},
		{"bad cache scalar", "route_sources:\n  - type: http\n    url: http://x/\n    cache: maybe\n", "line 4: cache: want true, false"},
		{"not a mapping", "route_sources:\n  - file\n", "line 2: a route source is a mapping"},
		{"tls cert without key", "route_sources:\n  - type: http\n    url: https://x/\n    tls_cert: pw\n", "route_sources[0] (line 2).tls_key: missing (a client certificate without its key)"},
		{"tls key unreadable", "route_sources:\n  - type: http\n    url: https://x/\n    tls_cert: pw\n    tls_key: nokey.pem\n", "route_sources[0] (line 5).tls_key: open " + filepath.Join(dir, "nokey.pem")},
		{"redis bad url", "route_sources:\n  - type: redis\n    url: http://x\n", "route_sources[0] (line 3).url: "},
		{"redis password file missing", "route_sources:\n  - type: redis\n    url: redis://127.0.0.1:6379\n    password_file: nopw\n", "route_sources[0] (line 4).password_file: open " + filepath.Join(dir, "nopw")},
		{"sql password file empty", "route_sources:\n  - type: sql\n    url: postgres://h/db\n    query: SELECT 1\n    password_file: empty\n", "route_sources[0] (line 5).password_file: " + filepath.Join(dir, "empty") + ": empty (want the secret on its first line)"},
		{"negative cache size", "route_sources:\n  - type: http\n    url: http://x/\n    cache: {max_entries: -5}\n", "line 4: cache.max_entries: -5: must not be negative (0 means the default, 10000)"},
		{"negative route_cache size", "route_cache:\n  max_entries: -1\nroute_sources:\n  - type: redis\n    url: redis://127.0.0.1:9/0\n", "line 2: max_entries: -1: must not be negative"},
		{"negative max_conns", "route_sources:\n  - type: sql\n    url: postgres://h/db\n    query: SELECT h FROM r WHERE a = $1\n    max_conns: -1\n", "route_sources[0] (line 5).max_conns: -1: must not be negative (0 means the default)"},
		{"ldap password file missing", "route_sources:\n  - type: ldap\n    url: ldap://127.0.0.1\n    base_dn: dc=x\n    host_attr: mailHost\n    bind_dn: cn=x\n    bind_password_file: nopw\n", "route_sources[0] (line 7).bind_password_file: open " + filepath.Join(dir, "nopw")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decode(t, tt.yaml)
			if err == nil {
				var closeAll func() error
				_, _, closeAll, err = Build(context.Background(), dir, c.RouteSources, c.RouteCache)
				if err == nil {
					closeAll()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestYamlconfLoad: loaded by yamlconf, as the daemons do, each problem
// inside an entry names the file, its line and its path from the top.
func TestYamlconfLoad(t *testing.T) {
	var c daemonConfig
	_, err := yamlconf.Decode("pipegate.yaml", []byte(`route_sources:
  - type: file
    pth: routes.yaml
  - type: http
    url: http://x/
    timeout: 5
    cache:
      ttl: 1s
route_cache: maybe
`), &c)
	for _, want := range []string{
		"pipegate.yaml:3: route_sources[0].pth: unknown field (want one of: ",
		"pipegate.yaml:6: route_sources[1].timeout: invalid duration \"5\"",
		"pipegate.yaml:8: route_sources[1].cache.ttl: unknown field (want one of: max_entries, negative_ttl, positive_ttl)",
		"pipegate.yaml:9: route_cache: want true, false or a mapping",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
	_, err = yamlconf.Decode("pipegate.yaml", []byte("route_sources:\n  - type: http\n    url: http://x/\n    timeout: 2s\n    cache: {positive_ttl: 1m}\n"), &c)
	if err != nil || c.RouteSources[0].Timeout.Duration != 2*time.Second || c.RouteSources[0].Cache.PositiveTTL.Duration != time.Minute {
		t.Fatalf("good entry: %+v %v", c.RouteSources, err)
	}
}

// TestNegativeNumbersRefused: a negative max_entries (route_cache, or a
// source's cache:) is refused where the file has it, not taken as the
// default 10000; Build refuses negative numbers a program sets too.
func TestNegativeNumbersRefused(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"route_sources:\n  - type: http\n    url: http://127.0.0.1:9/auth\n    cache: {max_entries: -5}\n",
			"p.yaml:4: route_sources[0].cache.max_entries: -5: must not be negative (0 means the default, 10000)"},
		{"route_sources:\n  - type: redis\n    url: redis://127.0.0.1:9/0\n    cache:\n      positive_ttl: 1s\n      max_entries: -2\n",
			"p.yaml:6: route_sources[0].cache.max_entries: -2: must not be negative (0 means the default, 10000)"},
		{"route_cache:\n  max_entries: -1\nroute_sources:\n  - type: redis\n    url: redis://127.0.0.1:9/0\n",
			"p.yaml:2: route_cache.max_entries: -1: must not be negative (0 means the default, 10000)"},
		{"route_cache: {negative_ttl: -1s}\n", `p.yaml:1: route_cache.negative_ttl: negative duration "-1s"`},
	} {
		var c daemonConfig
		_, err := yamlconf.Decode("p.yaml", []byte(tt.yaml), &c)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n err = %v\nwant %s", tt.yaml, err, tt.want)
		}
	}

	redis := SourceConfig{Type: "redis", URL: "redis://127.0.0.1:9/0", Line: 3, keys: map[string]int{"type": 3, "url": 4, "cache": 5}}
	withCache := redis
	withCache.Cache = &CacheConfig{MaxEntries: -1}
	withTTL := redis
	withTTL.Cache = &CacheConfig{PositiveTTL: yamlconf.Duration{Duration: -time.Second, Given: true}}
	withTimeout := redis
	withTimeout.Timeout = yamlconf.Duration{Duration: -time.Second, Given: true}
	for _, tt := range []struct {
		name   string
		source SourceConfig
		cache  CacheConfig
		want   string
	}{
		{"route_cache", redis, CacheConfig{MaxEntries: -3}, "route_cache.max_entries: -3: must not be negative (0 means the default, 10000)"},
		{"route_cache ttl", redis, CacheConfig{NegativeTTL: yamlconf.Duration{Duration: -time.Second}}, "route_cache.negative_ttl: negative duration -1s"},
		{"cache", withCache, CacheConfig{}, "route_sources[0] (line 5).cache.max_entries: -1: must not be negative (0 means the default, 10000)"},
		{"cache ttl", withTTL, CacheConfig{}, "route_sources[0] (line 5).cache.positive_ttl: negative duration -1s"},
		{"timeout", withTimeout, CacheConfig{}, "route_sources[0] (line 3).timeout: negative duration -1s"},
	} {
		_, _, closeAll, err := Build(context.Background(), t.TempDir(), []SourceConfig{tt.source}, tt.cache)
		if err == nil {
			closeAll()
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n err = %v\nwant %s", tt.name, err, tt.want)
		}
		if _, ok := err.(*FieldError); !ok {
			t.Errorf("%s: %T, want a *FieldError", tt.name, err)
		}
	}
	// A daemon names the line of route_cache's key by Key.
	_, _, _, err := Build(context.Background(), t.TempDir(), []SourceConfig{redis}, CacheConfig{MaxEntries: -1})
	if fe, ok := err.(*FieldError); !ok || fe.Key() != "route_cache.max_entries" {
		t.Errorf("Build: %v, want a *FieldError with Key route_cache.max_entries", err)
	}
}

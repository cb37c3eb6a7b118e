package file

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const issueFile = `routes:
  - account: alice@a.test
    backend: imap://127.0.0.1:14301
  - domain: b.test
    backend: imaps://127.0.0.1:19932
default: imap+starttls://127.0.0.1:14301
`

const fullFile = `routes:
  - account: alice@a.test
    backend: imap://127.0.0.1:14301
  - account: Bob@A.test
    backends: [imaps://127.0.0.1:9931, "imaps://127.0.0.1:9932?server_name=mail.a.test"]
    login: bob
  - account: alice@a.test
    network: 10.0.0.0/8
    backend: imap://127.0.0.1:14391
  - account: alice@a.test
    network: 10.1.0.0/16
    backend: imap://127.0.0.1:14392
  - domain: "*@b.test"
    backend: imaps://127.0.0.1:19932
    login: "%n"
  - domain: b.test
    network: [192.0.2.0/24, "2001:db8::/32"]
    backend: imap://127.0.0.1:19933
  - network: 198.51.100.0/24
    backend: imap://127.0.0.1:19999
  - network: 198.51.100.7
    backend: imap://127.0.0.1:19998
default: [imap+starttls://127.0.0.1:14301, imap://127.0.0.1:14302]
`

func mustParse(t *testing.T, data string) *Source {
	t.Helper()
	s, err := Parse("routes.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func addrs(rt route.Route) string {
	var out []string
	for _, b := range rt.Backends {
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

func TestIssueFile(t *testing.T) {
	s := mustParse(t, issueFile)
	tests := []struct{ account, want string }{
		{"alice@a.test", "imap://127.0.0.1:14301"},
		{"ALICE@A.Test", "imap://127.0.0.1:14301"},
		{"carol@b.test", "imaps://127.0.0.1:19932"},
		{"carol@B.TEST", "imaps://127.0.0.1:19932"},
		{"dave@c.test", "imap+starttls://127.0.0.1:14301"},
		{"nodomain", "imap+starttls://127.0.0.1:14301"},
		{"", "imap+starttls://127.0.0.1:14301"},
	}
	for _, tt := range tests {
		rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: tt.account})
		if err != nil {
			t.Errorf("%q: %v", tt.account, err)
			continue
		}
		if got := addrs(rt); got != tt.want {
			t.Errorf("%q: backends %s, want %s", tt.account, got, tt.want)
		}
		if rt.Login != "" {
			t.Errorf("%q: login %q, want unchanged", tt.account, rt.Login)
		}
	}
	if got := s.Rules(); got != 3 {
		t.Errorf("Rules() = %d, want 3", got)
	}
}

// TestCaseIsASCII: accounts and domains match without regard to ASCII
// case only; a Kelvin sign (U+212A), which Unicode lowers to "k", is not
// the account "kate" (as in Dovecot, whose %Lu lowers ASCII letters only).
func TestCaseIsASCII(t *testing.T) {
	s := mustParse(t, "routes:\n  - account: kate@a.test\n    backend: imap://127.0.0.1:14301\n  - domain: k.test\n    backend: imap://127.0.0.1:14302\ndefault: imap://127.0.0.1:14303\n")
	for account, want := range map[string]string{
		"KATE@A.test": "imap://127.0.0.1:14301", "\u212Aate@a.test": "imap://127.0.0.1:14303",
		"x@K.TEST": "imap://127.0.0.1:14302", "x@\u212A.test": "imap://127.0.0.1:14303",
	} {
		rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: account})
		if err != nil || addrs(rt) != want {
			t.Errorf("%q: %s, %v; want %s", account, addrs(rt), err, want)
		}
	}
}

// routeCase is a lookup and the route it should give.
type routeCase struct {
	name, account, client string // client: "" for no address
	want, login           string // want: the backends, as addrs gives them
}

// lookupAt looks account up for a connection from client to local ("" for
// no address) and fails t on an error.
func lookupAt(t *testing.T, s *Source, account, client, local string) route.Route {
	t.Helper()
	req := route.Request{Protocol: "imap", Account: account}
	if client != "" {
		req.ClientAddr = netip.MustParseAddrPort(client)
	}
	if local != "" {
		req.LocalAddr = netip.MustParseAddrPort(local)
	}
	rt, err := s.Lookup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// checkRoutes runs each case's lookup in s as a subtest.
func checkRoutes(t *testing.T, s *Source, cases []routeCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rt := lookupAt(t, s, tt.account, tt.client, "")
			if got := addrs(rt); got != tt.want {
				t.Errorf("backends %s, want %s", got, tt.want)
			}
			if rt.Login != tt.login {
				t.Errorf("login %q, want %q", rt.Login, tt.login)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	checkRoutes(t, mustParse(t, fullFile), []routeCase{
		{"account", "alice@a.test", "127.0.0.1:5000", "imap://127.0.0.1:14301", ""},
		{"account, no client address", "alice@a.test", "", "imap://127.0.0.1:14301", ""},
		{"account+network beats account", "alice@a.test", "10.9.9.9:1", "imap://127.0.0.1:14391", ""},
		{"longest prefix wins", "alice@a.test", "10.1.2.3:1", "imap://127.0.0.1:14392", ""},
		{"mapped IPv4 client", "alice@a.test", "[::ffff:10.1.2.3]:1", "imap://127.0.0.1:14392", ""},
		{"account beats domain+network", "alice@a.test", "192.0.2.1:1", "imap://127.0.0.1:14301", ""},
		{"failover list and login", "bob@a.test", "", "imaps://127.0.0.1:9931 imaps://127.0.0.1:9932?server_name=mail.a.test", "bob"},
		{"domain with *@, login template", "Carol@b.test", "", "imaps://127.0.0.1:19932", "Carol"},
		{"domain+network", "carol@b.test", "192.0.2.77:1", "imap://127.0.0.1:19933", ""},
		{"domain+network IPv6", "carol@b.test", "[2001:db8::1]:1", "imap://127.0.0.1:19933", ""},
		{"domain beats network alone", "carol@b.test", "198.51.100.7:1", "imaps://127.0.0.1:19932", "carol"},
		{"network alone", "x@c.test", "198.51.100.8:1", "imap://127.0.0.1:19999", ""},
		{"network alone, longest prefix", "x@c.test", "198.51.100.7:1", "imap://127.0.0.1:19998", ""},
		{"default list", "x@c.test", "127.0.0.1:1", "imap+starttls://127.0.0.1:14301 imap://127.0.0.1:14302", ""},
		{"default, subdomain is not the domain", "x@sub.b.test", "", "imap+starttls://127.0.0.1:14301 imap://127.0.0.1:14302", ""},
	})
}

func TestNotFoundWithoutDefault(t *testing.T) {
	s := mustParse(t, "routes:\n  - account: a@a.test\n    backend: imap://127.0.0.1:1\n")
	_, err := s.Lookup(context.Background(), route.Request{Account: "b@a.test"})
	if !errors.Is(err, route.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	s = mustParse(t, "routes: []\n")
	if _, err := s.Lookup(context.Background(), route.Request{Account: "b@a.test"}); !errors.Is(err, route.ErrNotFound) {
		t.Fatalf("empty routes: err = %v, want ErrNotFound", err)
	}
}

func TestLookupHonoursContext(t *testing.T) {
	s := mustParse(t, issueFile)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestResultIsACopy(t *testing.T) {
	s := mustParse(t, issueFile)
	rt, _ := s.Lookup(context.Background(), route.Request{Account: "alice@a.test"})
	rt.Backends[0].Addr = "changed:1"
	rt, _ = s.Lookup(context.Background(), route.Request{Account: "alice@a.test"})
	if rt.Backends[0].Addr != "127.0.0.1:14301" {
		t.Fatalf("a caller changed the table: %s", rt.Backends[0].Addr)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // each must appear in the error text
	}{
		{"empty", "", []string{"routes.yaml: empty file"}},
		{"comments only", "# nothing\n", []string{"empty file"}},
		{"syntax", "routes:\n  - account: a\n   backend: x\n", []string{"routes.yaml: ", "line 1: did not find expected '-' indicator"}},
		{"tab", "routes:\n  - account: a\n    backend: x\n\tfoo: 1\n", []string{"routes.yaml: ", "line 3: found a tab character"}},
		{"unknown top field", "routes: []\ndefualt: imap://h:1\n", []string{"routes.yaml:2: defualt: unknown field (want one of: default, routes)"}},
		{"unknown rule field", issueFile + "  - account: x@a.test\n    bakend: imap://h:1\n", nil},
		{"unknown rule field 2", "routes:\n  - account: x@a.test\n    backend: imap://h:1\n  - account: y@a.test\n    bakend: imap://h:1\n",
			[]string{"routes.yaml:5: routes[1].bakend: unknown field"}},
		{"bad scheme", "routes:\n  - account: x@a.test\n    backend: gopher://h:1\n", []string{"routes.yaml:3: routes[0].backend:", `unknown scheme "gopher"`}},
		{"bad list item", "routes:\n  - account: x@a.test\n    backends:\n      - imap://h:1\n      - http://h:2\n", []string{"routes.yaml:5: routes[0].backends[1]:", "unknown scheme"}},
		{"no backend", "routes:\n  - account: x@a.test\n", []string{"routes.yaml:2: routes[0]: no backend: or backends:"}},
		{"both backend and backends", "routes:\n  - account: x@a.test\n    backend: imap://h:1\n    backends: [imap://h:2]\n", []string{"routes[0]: both backend: and backends:"}},
		{"backend as list", "routes:\n  - account: x@a.test\n    backend: [imap://h:1]\n", []string{"routes.yaml:3: routes[0].backend: want one URL"}},
		{"matches nothing", "routes:\n  - backend: imap://h:1\n", []string{"routes.yaml:2: routes[0]: matches nothing"}},
		{"account and domain", "routes:\n  - account: x@a.test\n    domain: a.test\n    backend: imap://h:1\n", []string{"routes[0]: both account: and domain:"}},
		{"bad domain", "routes:\n  - domain: \"*.a.test\"\n    backend: imap://h:1\n", []string{"routes.yaml:2: routes[0].domain:", "want a domain"}},
		{"wildcard account", "routes:\n  - account: \"*@a.test\"\n    backend: imap://h:1\n", []string{"routes[0].account:", "use domain:"}},
		{"bad network", "routes:\n  - network: 10.0.0.0/33\n    backend: imap://h:1\n", []string{"routes.yaml:2: routes[0].network:", "want a CIDR"}},
		{"bad network in list", "routes:\n  - network:\n      - 10.0.0.0/8\n      - nonsense\n    backend: imap://h:1\n", []string{"routes.yaml:4: routes[0].network[1]:"}},
		{"bad login template", "routes:\n  - account: x@a.test\n    login: \"%x\"\n    backend: imap://h:1\n", []string{"routes.yaml:3: routes[0].login:", "unknown %x"}},
		{"duplicate account", "routes:\n  - account: x@a.test\n    backend: imap://h:1\n  - account: X@a.test\n    backend: imap://h:2\n", []string{"routes.yaml:4: routes[1]: same match as the rule at line 2"}},
		{"duplicate domain forms", "routes:\n  - domain: a.test\n    backend: imap://h:1\n  - domain: \"*@A.test\"\n    backend: imap://h:2\n", []string{"routes[1]: same match as the rule at line 2"}},
		{"duplicate network", "routes:\n  - network: 10.0.0.0/8\n    backend: imap://h:1\n  - network: 10.1.0.0/8\n    backend: imap://h:2\n", []string{"routes[1]: same match", "network 10.0.0.0/8"}},
		{"bad default", "default: imap://h:1/path\n", []string{"routes.yaml:1: default:", "want SCHEME://HOST:PORT"}},
		{"routes not a list", "routes: alice\n", []string{"routes.yaml:1:", "want a list"}},
		{"rule not a mapping", "routes:\n  - alice\n", []string{"routes.yaml:2:", "want a mapping"}},
		{"two documents", "default: imap://h:1\n---\ndefault: imap://h:2\n", []string{"more than one YAML document"}},
		{"duplicate key", "default: imap://h:1\ndefault: imap://h:2\n", []string{"routes.yaml:2: default: given twice (also on line 1)"}},
		{"several problems", "routes:\n  - account: x@a.test\n  - domain: \"\"\n    backend: imap://h:1\n", []string{"routes.yaml:2: routes[0]: no backend", "routes.yaml:3: routes[1].domain: empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("routes.yaml", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *file.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lookupAddr(t *testing.T, s *Source, account string) string {
	t.Helper()
	rt, err := s.Lookup(context.Background(), route.Request{Account: account})
	if err != nil {
		t.Fatalf("lookup %s: %v", account, err)
	}
	return rt.Backends[0].Addr
}

func TestOpenAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a missing file: err = %v, want one naming %s", err, path)
	}
	writeFile(t, path, issueFile)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
	if got := lookupAddr(t, s, "alice@a.test"); got != "127.0.0.1:14301" {
		t.Fatalf("before reload: %s", got)
	}

	writeFile(t, path, strings.Replace(issueFile, "14301\n  - domain", "15555\n  - domain", 1))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := lookupAddr(t, s, "alice@a.test"); got != "127.0.0.1:15555" {
		t.Fatalf("after reload: %s, want the new backend", got)
	}

	// A broken file: the error names it, and the table in force stays.
	writeFile(t, path, "routes:\n  - account: alice@a.test\n    backend: nope://x\n")
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), path+":3: routes[0].backend") {
		t.Fatalf("reload of a broken file: err = %v", err)
	}
	if got := lookupAddr(t, s, "alice@a.test"); got != "127.0.0.1:15555" {
		t.Fatalf("after a failed reload: %s, want the old table", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a removed file: no error")
	}
	if got := lookupAddr(t, s, "alice@a.test"); got != "127.0.0.1:15555" {
		t.Fatalf("after a removed file: %s, want the old table", got)
	}

	p := mustParse(t, issueFile)
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a parsed source: no error")
	}
}

// TestReloadConcurrent runs lookups while reloading; go test -race checks it.
func TestReloadConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, path, issueFile)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				rt, err := s.Lookup(context.Background(), route.Request{Account: "carol@b.test"})
				if err != nil || len(rt.Backends) != 1 {
					t.Errorf("lookup during reload: %v %v", rt, err)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func BenchmarkLookup(b *testing.B) {
	s, err := Parse("routes.yaml", []byte(fullFile))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, acct := range []string{"alice@a.test", "carol@b.test", "x@c.test"} {
		b.Run(acct, func(b *testing.B) {
			req := route.Request{Protocol: "imap", Account: acct, ClientAddr: netip.MustParseAddrPort("127.0.0.1:5000")}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Lookup(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

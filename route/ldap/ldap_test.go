package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

const suffix = "dc=pipegate,dc=test"

// schema adds attributes for pipegate routes (OpenLDAP's experimental OID arc).
var schema = []string{
	"attributetype ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'pipegateBackend' DESC 'backend URL' EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )",
	"attributetype ( 1.3.6.1.4.1.4203.666.11.99.2 NAME 'pipegatePort' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )",
	"attributetype ( 1.3.6.1.4.1.4203.666.11.99.3 NAME 'pipegateTLS' EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )",
	"attributetype ( 1.3.6.1.4.1.4203.666.11.99.4 NAME 'pipegateLogin' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
	"attributetype ( 1.3.6.1.4.1.4203.666.11.99.5 NAME 'pipegateServerName' EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )",
	"objectclass ( 1.3.6.1.4.1.4203.666.11.99.10 NAME 'pipegateRoute' SUP top AUXILIARY MAY ( pipegateBackend $ pipegatePort $ pipegateTLS $ pipegateLogin $ pipegateServerName ) )",
}

var (
	srv     *realserver.Slapd
	srvErr  error
	seedErr error
)

const bindDN = "cn=pipegate," + suffix
const bindPW = "route-reader-pw"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-route-ldap-")
	if err != nil {
		panic(err)
	}
	srv, srvErr = realserver.StartSlapd(dir, realserver.SlapdConfig{Suffix: suffix, Schema: schema})
	if srvErr == nil {
		seedErr = seed()
	}
	realserver.RunTests(m, func() {
		if srv != nil {
			srv.Stop()
		}
	}, func() { os.RemoveAll(dir) })
}

func person(uid, mail string, attrs ...string) *goldap.AddRequest {
	a := goldap.NewAddRequest("uid="+uid+",ou=people,"+suffix, nil)
	a.Attribute("objectClass", []string{"inetOrgPerson", "inetLocalMailRecipient", "pipegateRoute"})
	a.Attribute("uid", []string{uid})
	a.Attribute("cn", []string{uid})
	a.Attribute("sn", []string{uid})
	if mail != "" {
		a.Attribute("mail", []string{mail})
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		a.Attribute(attrs[i], strings.Split(attrs[i+1], "|"))
	}
	return a
}

// seed loads the test directory with the Go client as the root DN.
func seed() error {
	c, err := goldap.DialURL(srv.URL)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(srv.RootDN, srv.RootPW); err != nil {
		return err
	}
	root := goldap.NewAddRequest(suffix, nil)
	root.Attribute("objectClass", []string{"dcObject", "organization"})
	root.Attribute("dc", []string{"pipegate"})
	root.Attribute("o", []string{"pipegate tests"})
	people := goldap.NewAddRequest("ou=people,"+suffix, nil)
	people.Attribute("objectClass", []string{"organizationalUnit"})
	people.Attribute("ou", []string{"people"})
	reader := goldap.NewAddRequest(bindDN, nil)
	reader.Attribute("objectClass", []string{"organizationalRole", "simpleSecurityObject"})
	reader.Attribute("cn", []string{"pipegate"})
	reader.Attribute("userPassword", []string{bindPW})
	for _, a := range []*goldap.AddRequest{
		root, people, reader,
		person("alice", "alice@a.test", "pipegateBackend", "imap://127.0.0.1:14301"),
		person("bob", "bob@a.test", "pipegateBackend", "imaps://127.0.0.1:9931|imaps://127.0.0.1:9932?server_name=m.a.test", "pipegateLogin", "bob.b"),
		person("carol", "carol@b.test", "mailHost", "mail1.b.test", "pipegatePort", "10143", "pipegateTLS", "starttls", "pipegateLogin", "carol"),
		person("dave", "dave@b.test", "mailHost", "mail2.b.test"),
		person("erin", "erin@b.test", "mailHost", "mail4.b.test", "pipegateTLS", "tls", "pipegateServerName", "imap.b.test"),
		person("nohost", "nohost@b.test"),
		person("twin1", "twin@b.test", "mailHost", "x"),
		person("twin2", "twin@b.test", "mailHost", "y"),
		person("star", "*@b.test", "mailHost", "star.b.test"),
		person("badurl", "badurl@a.test", "pipegateBackend", "gopher://x:1"),
	} {
		if err := c.Add(a); err != nil {
			return fmt.Errorf("add %s: %w", a.DN, err)
		}
	}
	return nil
}

func need(t testing.TB) {
	t.Helper()
	realserver.Need(t, srvErr)
	if seedErr != nil {
		t.Fatalf("seed the directory: %v", seedErr)
	}
}

func caConfig(t testing.TB) *tls.Config {
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool}
}

func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	need(t)
	if len(cfg.URLs) == 0 {
		cfg.URLs = []string{srv.URL}
	}
	if cfg.BaseDN == "" {
		cfg.BaseDN = "ou=people," + suffix
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lookup(t *testing.T, s *Source, account string) (route.Route, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Lookup(ctx, route.Request{Protocol: "imap", Account: account})
}

func TestBackendAttr(t *testing.T) {
	s := newSource(t, Config{BackendAttr: "pipegateBackend", LoginAttr: "pipegateLogin"})
	tests := []struct{ account, want, login, err string }{
		{"alice@a.test", "imap://127.0.0.1:14301", "", ""},
		{"ALICE@A.TEST", "imap://127.0.0.1:14301", "", ""}, // mail matches case-insensitively
		{"bob@a.test", "imaps://127.0.0.1:9931 imaps://127.0.0.1:9932?server_name=m.a.test", "bob.b", ""},
		{"nobody@a.test", "", "", "not found"},
		{"carol@b.test", "", "", "not found"}, // entry without pipegateBackend
		{"badurl@a.test", "", "", `pipegateBackend: backend "gopher://x:1"`},
		{"twin@b.test", "", "", "more than one entry"},
		// Filter injection: the value is escaped, so these match nothing.
		{"*", "", "", "not found"},
		{"alice@a.test)(mail=*", "", "", "not found"},
		{"*@b.test", "", "", "not found"}, // only the literal "*@b.test" entry, which has no backend
	}
	for _, tt := range tests {
		rt, err := lookup(t, s, tt.account)
		routetest.Check(t, routetest.Want{Account: tt.account, Backends: tt.want, Login: tt.login, Err: tt.err}, rt, err)
	}
}

func TestHostAttrs(t *testing.T) {
	s := newSource(t, Config{HostAttr: "mailHost", PortAttr: "pipegatePort", TLSAttr: "pipegateTLS",
		ServerNameAttr: "pipegateServerName", LoginAttr: "pipegateLogin", Filter: "(&(objectClass=inetOrgPerson)(mail=%u))"})
	tests := []struct{ account, want, login string }{
		{"carol@b.test", "imap+starttls://mail1.b.test:10143", "carol"},
		{"dave@b.test", "imap://mail2.b.test:143", ""},
		{"erin@b.test", "imaps://mail4.b.test:993?server_name=imap.b.test", ""},
		{"*@b.test", "imap://star.b.test:143", ""},
	}
	for _, tt := range tests {
		rt, err := lookup(t, s, tt.account)
		if err != nil {
			t.Errorf("%s: %v", tt.account, err)
			continue
		}
		if routetest.Backends(rt) != tt.want || rt.Login != tt.login {
			t.Errorf("%s: %s login %q, want %s login %q", tt.account, routetest.Backends(rt), rt.Login, tt.want, tt.login)
		}
	}
	if _, err := lookup(t, s, "nohost@b.test"); !errors.Is(err, route.ErrNotFound) {
		t.Errorf("entry without mailHost: err = %v, want ErrNotFound", err)
	}
}

// TestMailHostDefaults: mailHost alone, port and TLS mode from the config.
func TestMailHostDefaults(t *testing.T) {
	s := newSource(t, Config{HostAttr: "mailHost", TLSMode: "tls", Filter: "(uid=%n)"})
	rt, err := lookup(t, s, "carol@elsewhere.test")
	if err != nil || routetest.Backends(rt) != "imaps://mail1.b.test:993" {
		t.Fatalf("%s %v", routetest.Backends(rt), err)
	}
}

func TestTLSAndBind(t *testing.T) {
	need(t)
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"ldaps", Config{URLs: []string{srv.TLSURL}, TLS: caConfig(t)}, ""},
		{"StartTLS with bind", Config{URLs: []string{srv.URL}, StartTLS: true, TLS: caConfig(t), BindDN: bindDN, BindPassword: bindPW}, ""},
		{"ldaps, unknown CA", Config{URLs: []string{srv.TLSURL}}, "certificate"},
		{"StartTLS, unknown CA", Config{URLs: []string{srv.URL}, StartTLS: true}, "StartTLS"},
		{"wrong bind password", Config{URLs: []string{srv.URL}, BindDN: bindDN, BindPassword: "wrong-pw"}, "bind to " + srv.URL + " as " + bindDN},
		{"first URL down, second up", Config{URLs: []string{"ldap://127.0.0.1:1", srv.URL}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BackendAttr = "pipegateBackend"
			s := newSource(t, tt.cfg)
			rt, err := lookup(t, s, "alice@a.test")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "wrong-pw") {
					t.Fatalf("err = %v: has the password", err)
				}
				return
			}
			if err != nil || routetest.Backends(rt) != "imap://127.0.0.1:14301" {
				t.Fatalf("%s %v", routetest.Backends(rt), err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{URLs: []string{"ldap://127.0.0.1:389"}, BaseDN: suffix, HostAttr: "mailHost"}
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URLs = nil }, "urls: empty"},
		{func(c *Config) { c.URLs = []string{"http://x"} }, "urls[0]"},
		{func(c *Config) { c.URLs = []string{"ldaps://x"}; c.StartTLS = true }, "start_tls with ldaps"},
		{func(c *Config) { c.BaseDN = "" }, "base_dn: empty"},
		{func(c *Config) { c.BaseDN = "not a dn" }, "base_dn"},
		{func(c *Config) { c.Scope = "tree" }, "scope"},
		{func(c *Config) { c.Filter = "(mail=%x)" }, "filter"},
		{func(c *Config) { c.Filter = "(mail=%u" }, "filter"},
		{func(c *Config) { c.BackendAttr = "x" }, "both set"},
		{func(c *Config) { c.HostAttr = "" }, "want backend_attr or host_attr"},
		{func(c *Config) { c.TLSMode = "maybe" }, "tls_mode"},
		{func(c *Config) { c.Port = 70000 }, "port"},
		{func(c *Config) { c.BindDN = "cn=x" }, "without a password"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", cfg, err, tt.want)
		}
	}
}

// TestSetPassword: a rotated bind password is used by the next bind; the
// connection bound before stays.
func TestSetPassword(t *testing.T) {
	s := newSource(t, Config{BackendAttr: "pipegateBackend", BindDN: bindDN, BindPassword: "old-wrong-pw"})
	if _, err := lookup(t, s, "alice@a.test"); err == nil || !strings.Contains(err.Error(), "bind to") {
		t.Fatalf("old password: err = %v, want a bind error", err)
	}
	s.SetPassword(bindPW)
	if rt, err := lookup(t, s, "alice@a.test"); err != nil || len(rt.Backends) != 1 {
		t.Fatalf("new password: %v %v", rt, err)
	}
	s.SetPassword("newer-wrong-pw")
	if _, err := lookup(t, s, "alice@a.test"); err != nil {
		t.Fatalf("bound connection after SetPassword: %v", err)
	}
}

// TestDownAndBack: a stopped directory is an error, not ErrNotFound, and
// the source reconnects by itself when it is back.
func TestDownAndBack(t *testing.T) {
	s := newSource(t, Config{BackendAttr: "pipegateBackend"})
	if _, err := lookup(t, s, "alice@a.test"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := lookup(t, s, "alice@a.test")
	if err == nil || errors.Is(err, route.ErrNotFound) {
		t.Fatalf("directory down: err = %v, want an error", err)
	}
	_, err = lookup(t, s, "alice@a.test") // now the dial itself fails
	if err == nil || errors.Is(err, route.ErrNotFound) || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("directory still down: err = %v, want a connect error naming %s", err, srv.URL)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if rt, err := lookup(t, s, "alice@a.test"); err != nil || len(rt.Backends) != 1 {
		t.Fatalf("directory back: %v %v", rt, err)
	}
}

// TestHungDirectory: a directory that does not answer fails the lookup at
// its deadline, and the source works again once it answers.
func TestHungDirectory(t *testing.T) {
	s := newSource(t, Config{BackendAttr: "pipegateBackend"})
	if _, err := lookup(t, s, "alice@a.test"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"})
	cancel()
	if resumeErr := srv.Resume(); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung directory: err = %v, want DeadlineExceeded", err)
	}
	if _, err := lookup(t, s, "alice@a.test"); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := newSource(b, Config{BackendAttr: "pipegateBackend"})
	req := route.Request{Protocol: "imap", Account: "alice@a.test"}
	routetest.BenchLookup(b, s, req)
}

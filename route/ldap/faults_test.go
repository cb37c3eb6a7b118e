package ldap

import (
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// TestAnswerBounded: an entry whose backend attribute holds 100 000 URLs
// is an error, not a route of 100 000 backends (route.MaxBackends).
func TestAnswerBounded(t *testing.T) {
	need(t)
	c, err := goldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(srv.RootDN, srv.RootPW); err != nil {
		t.Fatal(err)
	}
	a := person("huge", "huge@a.test", "pipegateBackend", strings.Repeat("imap://127.0.0.1:1 ", 100000))
	if err := c.Add(a); err != nil {
		t.Fatal(err)
	}
	defer c.Del(goldap.NewDelRequest(a.DN, nil))
	s := newSource(t, Config{BackendAttr: "pipegateBackend"})
	if rt, err := lookup(t, s, "huge@a.test"); err == nil || !strings.Contains(err.Error(), "more than 64 backends") {
		t.Fatalf("%d backends, %v; want an error", len(rt.Backends), err)
	}
}

// TestLookupAfterClose: a lookup after Close (a session still finishing
// while the daemon stops) fails and opens no connection, which nobody
// would close again.
func TestLookupAfterClose(t *testing.T) {
	s := newSource(t, Config{BackendAttr: "pipegateBackend"})
	if _, err := lookup(t, s, "alice@a.test"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := lookup(t, s, "alice@a.test")
	open := s.conn != nil
	s.Close() // for the package's goleak check, should it be open
	if err == nil || open {
		t.Fatalf("after Close: lookup err = %v, connection open again = %v; want an error and no connection", err, open)
	}
}

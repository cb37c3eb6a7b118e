package pop3_test

import (
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3"
)

// TestPassRightAfterUser: PASS "may only be given in the AUTHORIZATION
// state immediately after a successful USER command" (RFC 1939 section
// 7). Any command between them, a failed AUTH or USER included, makes the
// PASS a refusal; it never logs in a name given earlier. Dovecot takes
// such a PASS; the RFC does not.
func TestPassRightAfterUser(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true, MaxLoginFailures: 10,
	}})
	for _, between := range []string{
		"CAPA",
		"AUTH PLAIN " + b64("\x00bob@a.test\x00nope"),
		"USER",
		"NOOP",
	} {
		c := dial(t, "", p.addr)
		if l := c.cmd("USER alice@a.test"); l != "+OK Send the password" {
			t.Fatalf("USER: %q", l)
		}
		if between == "CAPA" {
			c.multi(between)
		} else {
			c.cmd(between)
		}
		if l := c.cmd("PASS pw"); !strings.HasPrefix(l, "-ERR") {
			t.Errorf("PASS after USER, %s: %q, want -ERR", between, l)
		}
	}
	c := dial(t, "", p.addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS pw"); !strings.HasPrefix(l, "+OK") {
		t.Errorf("PASS right after USER: %q", l)
	}
}

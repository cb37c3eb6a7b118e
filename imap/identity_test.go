package imap_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/route"
)

// TestIdentityNULSplit: a name with NUL, CR or LF, however it is sent,
// is refused before any route lookup (issue 17: the backend cut the name
// at the NUL while the proxy routed and logged all of it).
func TestIdentityNULSplit(t *testing.T) {
	var lookups atomic.Int32
	r := route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		lookups.Add(1)
		return route.Route{}, route.ErrNotFound
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, OAuth: true, MaxLoginFailures: 100}})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	split := "bob@a.test\x00alice@a.test"
	type step struct{ send, expect string }
	cases := []struct {
		name  string
		steps []step
	}{
		{"LOGIN literal", []step{{"a LOGIN {23}\r\n", "+ "}, {split + " pass-bob\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"LOGIN non-sync literal", []step{{"a LOGIN {23+}\r\n" + split + " pass-bob\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"LOGIN password literal with LF", []step{{"a LOGIN bob@a.test {4+}\r\np\nw1\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the password"}}},
		{"LOGIN name literal with CR", []step{{"a LOGIN {11+}\r\nbob@a.test\r pw\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"AUTHENTICATE LOGIN initial response", []step{{"a AUTHENTICATE LOGIN " + b64(split) + "\r\n", "+ "}, {b64("pass-bob") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"AUTHENTICATE LOGIN continuation", []step{{"a AUTHENTICATE LOGIN\r\n", "+ "}, {b64(split) + "\r\n", "+ "}, {b64("pass-bob") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"AUTHENTICATE PLAIN NUL inside", []step{{"a AUTHENTICATE PLAIN " + b64("\x00"+split+"\x00pass-bob") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid PLAIN message"}}},
		{"AUTHENTICATE PLAIN continuation, CR in the name", []step{{"a AUTHENTICATE PLAIN\r\n", "+ "}, {b64("\x00bob@a.test\r\x00pw") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"AUTHENTICATE PLAIN LF in the password", []step{{"a AUTHENTICATE PLAIN " + b64("\x00bob@a.test\x00p\nw") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the password"}}},
		{"XOAUTH2", []step{{"a AUTHENTICATE XOAUTH2 " + b64("user="+split+"\x01auth=Bearer t\x01\x01") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"OAUTHBEARER", []step{{"a AUTHENTICATE OAUTHBEARER " + b64("n,a="+split+",\x01auth=Bearer t\x01\x01") + "\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"outside username_chars", []step{{"a LOGIN \"bob smith@a.test\" pw\r\n", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name"}}},
		{"authzid of another user", []step{{"a AUTHENTICATE PLAIN " + b64("alice@a.test\x00bob@a.test\x00pw") + "\r\n", "a NO [AUTHENTICATIONFAILED] Authorization identity differs from the user name"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, p.addr)
			for _, s := range tc.steps {
				c.send(s.send)
				if l := c.line(); !strings.HasPrefix(l, s.expect) {
					t.Fatalf("after %q: got %q, want %q", s.send, l, s.expect)
				}
			}
			if n := lookups.Load(); n != 0 {
				t.Fatalf("%d route lookups for a refused name", n)
			}
		})
	}
}

// TestRouteOtherProtocolOnly: a route whose backends all serve another
// protocol is no route for this one: the uniform failure, no dial.
func TestRouteOtherProtocolOnly(t *testing.T) {
	r := route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		return route.Route{Backends: []route.Backend{{Protocol: "pop3", Addr: "127.0.0.1:1", ClientAddr: route.ClientAddrNone}}}, nil
	})
	var fails atomic.Int32
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true,
		FailureSleep: func(context.Context, time.Duration) bool { fails.Add(1); return true }, FailureDelay: time.Second}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test pw\r\n")
	if l := c.line(); l != "a NO [AUTHENTICATIONFAILED] Authentication failed." {
		t.Fatalf("got %q", l)
	}
	if fails.Load() != 1 {
		t.Fatalf("%d failures on the failure path, want 1", fails.Load())
	}
}

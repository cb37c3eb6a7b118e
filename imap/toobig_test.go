package imap_test

import (
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
)

// TestTooBig: a line that passes the length limit without a newline is
// answered with BAD [TOOBIG] and BYE, and the connection is closed, while
// the client still holds it open waiting: the proxy must not wait for a
// newline that never comes (issue 11). The login timeout is the default
// minute, longer than dialRaw's deadline, so a proxy that waits fails the
// test instead of answering "* BYE Login timeout".
func TestTooBig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int    // Server.MaxLineLength; 0: the default
		prefix  string // sent before the long part (with its CRLF if any)
		size    int    // bytes of the long part
		sasl    bool   // the long part answers AUTHENTICATE's "+ "
		wantTag string
	}{
		{name: "command", limit: 1000, prefix: "a LOGIN ", size: 1100, wantTag: "a"},
		{name: "command without tag", limit: 1000, size: 1100, wantTag: "*"},
		{name: "command of 1 MiB at the default limit", prefix: "a LOGIN ", size: 1 << 20, wantTag: "a"},
		{name: "after a literal", limit: 1000, prefix: "a LOGIN {5+}\r\nalice ", size: 1100, wantTag: "a"},
		{name: "SASL response", limit: 1000, sasl: true, size: 1100, wantTag: "a"},
		{name: "SASL response of 1 MiB at the default limit", sasl: true, size: 1 << 20, wantTag: "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, &imap.Server{
				Server: gateway.Server{
					Router:             routes(t, map[string][]string{}),
					AllowPlaintextAuth: true,
				},
				MaxLineLength: tc.limit,
			})
			c := dialRaw(t, p.addr)
			if tc.sasl {
				c.send("a AUTHENTICATE PLAIN\r\n")
				if l := c.line(); !strings.HasPrefix(l, "+") {
					t.Fatalf("AUTHENTICATE PLAIN: %q, want a continuation request", l)
				}
			}
			// The proxy stops reading at the limit and closes: a big
			// write may fail then, so it runs on its own and its error
			// does not count.
			done := make(chan struct{})
			go sendIgnoringErrors(c.conn, tc.prefix+strings.Repeat("A", tc.size), done)
			defer func() { <-done }()

			if l := c.line(); !strings.HasPrefix(l, tc.wantTag+" BAD [TOOBIG] ") {
				t.Errorf("answer to an endless line: %q, want %q", l, tc.wantTag+" BAD [TOOBIG] ...")
			}
			if l := c.line(); !strings.HasPrefix(l, "* BYE ") {
				t.Errorf("after TOOBIG: %q, want * BYE", l)
			}
			if rest := c.expectClosed(); len(rest) != 0 {
				t.Errorf("after BYE: %q, want the connection closed", rest)
			}
		})
	}
}

// sendIgnoringErrors writes s to c and closes done; c stays open, as a
// client that has not finished its line yet.
func sendIgnoringErrors(c net.Conn, s string, done chan<- struct{}) {
	defer close(done)
	_, _ = c.Write([]byte(s))
}

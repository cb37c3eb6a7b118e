package imap_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
)

// xoauthProxy serves a proxy whose one backend answers every XOAUTH2 with
// an error challenge and then, as Dovecot does, "BAD Authentication
// aborted by client." to a "*", or NO to anything else.
func xoauthProxy(t *testing.T, penalty *limit.Penalty) *proxy {
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n")
		for {
			c := fc.cmd()
			if c == nil {
				return
			}
			fc.send("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
			line, err := fc.rd.ReadLine()
			if err != nil {
				return
			}
			if string(line) == "*" {
				fc.send(c.Tag + " BAD Authentication aborted by client.\r\n")
				continue
			}
			fc.send(c.Tag + " NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
		}
	})
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		b, _ := route.ParseBackend("imap://" + fb.addr)
		return route.Route{Backends: []route.Backend{b}}, nil
	})
	return startProxy(t, &imap.Server{
		Server:        gateway.Server{Router: r, AllowPlaintextAuth: true, OAuth: true, MaxLoginFailures: 3, FailureDelay: -1, Penalty: penalty},
		MaxLineLength: 1024,
	})
}

var xoauthToken = base64.StdEncoding.EncodeToString([]byte("user=u@x.test\x01auth=Bearer t\x01\x01"))

// TestRelayedSASLCancel: in an exchange whose challenges come from the
// backend (XOAUTH2), "*" cancels and an answer that is not base64 is
// refused, each with the command's tagged BAD (RFC 9051 section 6.2.2), as
// in the proxy's own exchanges. The challenge was the backend's refusal of
// the token, so each is a failed login, counted in the address's penalty.
// An answer over the line limit is the tagged BAD [TOOBIG], then BYE.
func TestRelayedSASLCancel(t *testing.T) {
	store := limit.NewMemoryStore(0)
	p := xoauthProxy(t, &limit.Penalty{Store: store, Base: 1, Max: 1})
	c := dialRaw(t, p.addr)
	for tag, tc := range map[string]struct{ answer, want string }{
		"a": {"*", "a BAD AUTHENTICATE cancelled"},
		"b": {"not base64!", "b BAD Invalid base64 in SASL response"},
	} {
		// A token of its own each time: the same one refused again would
		// not raise the penalty (TestPenaltyRepeatNotCounted).
		token := base64.StdEncoding.EncodeToString([]byte("user=u@x.test\x01auth=Bearer t" + tag + "\x01\x01"))
		c.send(tag + " AUTHENTICATE XOAUTH2 " + token + "\r\n")
		c.expectPrefix("+ ")
		c.send(tc.answer + "\r\n")
		if l := c.line(); l != tc.want {
			t.Errorf("answer %q to a relayed challenge: %q, want %q", tc.answer, l, tc.want)
		}
	}
	c.send("n NOOP\r\n")
	if l := c.line(); !strings.HasPrefix(l, "n OK") {
		t.Errorf("after two cancels (three failures allowed): %q", l)
	}
	if n, err := store.Failures(context.Background(), "ip:127.0.0.1/32"); n != 2 || err != nil {
		t.Errorf("penalty count after two cancelled logins: %d, %v; want 2", n, err)
	}
	c.send("t AUTHENTICATE XOAUTH2 " + xoauthToken + "\r\n")
	c.expectPrefix("+ ")
	c.send(strings.Repeat("A", 2000) + "\r\n")
	if l := c.line(); !strings.HasPrefix(l, "t BAD [TOOBIG]") {
		t.Errorf("over-long answer to a relayed challenge: %q, want \"t BAD [TOOBIG] ...\"", l)
	}
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after it: %q, want BYE", l)
	}
}

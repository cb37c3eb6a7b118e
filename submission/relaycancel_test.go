package submission_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/submission"
)

// TestRelayedSASLCancel: in an exchange whose challenges come from the
// backend (XOAUTH2 sends its error that way), "*" cancels with 501 and an
// answer that is not base64 gets 501 5.5.2 (RFC 4954 section 4), as in the
// proxy's own exchanges: the backend gets "*" in its place. The challenge
// was the backend's refusal of the token, so each is a failed login,
// counted in the address's penalty.
func TestRelayedSASLCancel(t *testing.T) {
	fb := startFake(t, func(next func() string, send func(string)) {
		send("220 fake ESMTP\r\n")
		next() // EHLO
		send("250-fake\r\n250 AUTH PLAIN XOAUTH2\r\n")
		for {
			if next() == "" { // AUTH XOAUTH2 ..., or the end
				return
			}
			send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n")
			if next() == "*" {
				send("501 5.7.0 Authentication aborted\r\n") // as Postfix and Dovecot answer "*"
				continue
			}
			send("535 5.7.8 Invalid token\r\n")
		}
	})
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr + "?client_addr=none"}})
	store := limit.NewMemoryStore(0)
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true, OAuth: true,
		MaxLoginFailures: 4, FailureDelay: -1, Penalty: &limit.Penalty{Store: store, Base: 1, Max: 1}}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO client.test\r\n")
	c.reply()
	for _, tc := range []struct{ answer, want string }{
		{"*", "501 5.0.0 Authentication cancelled"},
		{"not base64!", "501 5.5.2 Cannot Base64-decode Client responses"},
		{"=", "501 5.5.2 Cannot Base64-decode Client responses"},
	} {
		// A token of its own each time: the same one refused again would
		// not raise the penalty.
		token := base64.StdEncoding.EncodeToString([]byte("user=alice@a.test\x01auth=Bearer " + tc.answer + "\x01\x01"))
		c.cmd("AUTH XOAUTH2 "+token, "334 eyJzdGF0dXMiOiI0MDEifQ==")
		c.cmd(tc.answer, tc.want)
	}
	c.cmd("NOOP", "250 2.0.0 OK")
	if n, err := store.Failures(context.Background(), "ip:127.0.0.1/32"); n != 3 || err != nil {
		t.Errorf("penalty count after three cancelled logins: %d, %v; want 3", n, err)
	}
}

package submission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission"
)

// denyRouter denies every login with the SMTP code it holds.
type denyRouter struct{ code string }

func (r denyRouter) Lookup(context.Context, route.Request) (route.Route, error) {
	return route.Route{}, &route.Denied{Text: "Try again later", Code: r.code}
}

// TestRoute421EndsSession: a route source's Auth-Error-Code "421 4.7.0"
// (nginx's auth_http services name SMTP codes there) is the reply to
// AUTH, and, 421 being "closing transmission channel" (RFC 5321 sections
// 3.8 and 4.2.3), the session ends with it: nothing after it is answered.
func TestRoute421EndsSession(t *testing.T) {
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: denyRouter{"421 4.7.0"}, AllowPlaintextAuth: true, MaxLoginFailures: 10}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO client.test\r\n")
	c.reply()
	c.send("AUTH PLAIN " + plain("", "alice@a.test", "secret") + "\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "421 ") {
		t.Fatalf("AUTH: %q", r)
	}
	c.send("NOOP\r\nQUIT\r\n")
	if rest := c.rest(); rest != "" {
		t.Fatalf("after a 421 the session went on: %q", rest)
	}
}

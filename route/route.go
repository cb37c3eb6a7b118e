// Package route maps an account (and the client's address) to the backend
// servers that hold it.
//
// The proxy asks a Router; sources (file, auth_http, LDAP, SQL, Redis) each
// implement Router and can be chained and cached:
//
//	r, err := file.Open("/etc/pipegate/routes.yaml")
//	...
//	rt, err := r.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
//	if errors.Is(err, route.ErrNotFound) { ... }
//	conn, err := net.Dial("tcp", rt.Backends[0].Addr)
package route

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Request is what a source may look at to choose a route.
type Request struct {
	Protocol   string // "imap"
	Account    string // the login name as the client sent it
	Password   string // only for sources configured to pass it on (auth_http); never log it
	AuthMethod string // "login", "plain", "xoauth2", "oauthbearer"
	Attempt    int    // 1 for the first login attempt on a connection
	ClientAddr netip.AddrPort
	LocalAddr  netip.AddrPort
	ClientTLS  bool // the client's connection is TLS (implicit, or after STARTTLS); auth_http sends Auth-SSL: on
	// The client's TLS version and cipher suite (crypto/tls's VersionTLS13,
	// TLS_AES_128_GCM_SHA256, ...), as the gateway negotiated them; 0 when
	// the connection is not TLS, or when a trusted proxy in front ended
	// the TLS (ClientTLS is then true, but the gateway knows no details).
	// auth_http sends them as Auth-SSL-Protocol and Auth-SSL-Cipher.
	ClientTLSVersion uint16
	ClientTLSCipher  uint16
}

// Route is a source's answer.
type Route struct {
	Backends []Backend // tried in order
	Login    string    // login name to send to the backend instead of Request.Account ("" = unchanged)
	Password string    // password to send to the backend instead of Request.Password ("" = unchanged; auth_http's Auth-Pass)
	// Checked: the source checked the request's password and found it
	// right (auth_http with PassPassword answering OK), just now: never
	// from a cache. Only then may a backend with login=xclient take the
	// login on the gateway's word.
	Checked bool
}

// Router finds the route for a request. Lookup must honour ctx's deadline.
type Router interface {
	Lookup(ctx context.Context, req Request) (Route, error)
}

// RouterFunc adapts a function to Router.
type RouterFunc func(ctx context.Context, req Request) (Route, error)

// Lookup calls f.
func (f RouterFunc) Lookup(ctx context.Context, req Request) (Route, error) { return f(ctx, req) }

// ErrNotFound means the source knows no route for the account; a chain asks
// the next source.
var ErrNotFound = errors.New("route: no route for account")

// MaxBackends bounds the backends (rows, values) a source takes from one
// answer: a route lists a few for failover; an answer of more is an error
// (the login is unavailable), never a route of thousands.
const MaxBackends = 64

// Denied is returned by a source that refuses the login outright (an
// auth_http service answering Auth-Status with an error text). The proxy
// relays Text to the client and lets it retry after Wait.
type Denied struct {
	Text string
	Wait time.Duration
	Code string // optional response code from the source (auth_http's Auth-Error-Code), e.g. "AUTHENTICATIONFAILED"
}

func (d *Denied) Error() string { return fmt.Sprintf("route: login denied: %s", d.Text) }

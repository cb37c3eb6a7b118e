package imap

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
)

// Defaults used when the Server's IMAP fields are zero.
const (
	DefaultMaxCommandsBeforeLogin = 30
	DefaultMaxLineLength          = 64 << 10 // as Dovecot's imap_max_line_length: room for OAuth tokens in SASL-IR
	DefaultMaxLiteral             = 64 << 10
	DefaultGreeting               = "pipegate IMAP proxy ready"
	// DefaultMaxPreLoginPerIP is gateway.DefaultMaxPreLoginPerIP.
	DefaultMaxPreLoginPerIP = gateway.DefaultMaxPreLoginPerIP
	// DefaultProxyTTL is gateway.DefaultProxyTTL: pipegate sends the
	// backend "x-proxy-ttl" one less than the session's in the ID, and a
	// client's own "x-proxy-ttl" in ID may lower it.
	DefaultProxyTTL = gateway.DefaultProxyTTL
)

// ErrServerClosed is returned by Serve after Shutdown
// (gateway.ErrServerClosed).
var ErrServerClosed = gateway.ErrServerClosed

// Server is an IMAP reverse proxy: a gateway.Server (listeners, limits,
// routing, backends, the pipe, Shutdown, SetRouter, SetTLSConfig) speaking
// IMAP. Set the fields, then call Serve for each listener (or ServeConn for
// each accepted connection). Only Router is required.
type Server struct {
	gateway.Server // its Protocol is set by Serve and ServeConn

	// IMAP4rev2 advertises IMAP4rev2 besides IMAP4rev1; set it only when
	// every backend speaks IMAP4rev2.
	IMAP4rev2 bool
	// Greeting is the greeting's text; "": Hostname and DefaultGreeting.
	Greeting string

	// TrustedNetworks are the proxies in front (another pipegate, a
	// Dovecot proxy) whose ID x-originating-ip and x-originating-port
	// give the client's address, as Dovecot's login_trusted_networks:
	// the session's log line, the login penalty, the route lookup and
	// the address passed to the backend use it. Anyone else's x- fields
	// are dropped.
	TrustedNetworks []netip.Prefix

	MaxCommandsBeforeLogin int   // 0: DefaultMaxCommandsBeforeLogin
	MaxLineLength          int   // bytes per command line; 0: DefaultMaxLineLength
	MaxLiteral             int64 // bytes per literal; 0: DefaultMaxLiteral

	once sync.Once
}

// NewMetrics makes the IMAP metrics (pipegate_imap_*, see
// gateway.NewMetrics) and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *gateway.Metrics {
	return gateway.NewMetrics(reg, "imap")
}

func (s *Server) setProtocol() {
	s.once.Do(func() { s.SetProtocol(protocol{s}) })
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown (then it returns ErrServerClosed) or an accept error that
// is not temporary. With implicitTLS, connections start with a TLS
// handshake (port 993) and TLSConfig must be set.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.setProtocol()
	return s.Server.Serve(l, implicitTLS)
}

// ServeConn serves one connection and returns when the proxy is done with
// it: after logout or an error, or once the logged-in session was handed
// to the pipe (which then owns the connection). With implicitTLS the
// connection starts with a TLS handshake. ctx cancels the pre-login
// dialogue.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, implicitTLS bool) {
	s.setProtocol()
	s.Server.ServeConn(ctx, c, implicitTLS)
}

// protocol is IMAP for the gateway.
type protocol struct{ srv *Server }

func (protocol) Name() string { return "imap" }

func (p protocol) Serve(s *gateway.Session) { newConn(p.srv, s).run() }

func (protocol) Refuse(s *gateway.Session, e *gateway.Error) {
	_, _ = s.Writer().WriteString("* BYE " + e.Text + "\r\n")
}

// Farewell is gateway.Farewell: an untagged BYE, which a client may get
// at any time (RFC 9051 7.1.5).
func (protocol) Farewell(text string) []byte { return []byte("* BYE " + text + "\r\n") }

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

package sieve

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/sieve/wire"
)

// Defaults used when the Server's ManageSieve fields are zero.
const (
	DefaultImplementation         = "pipegate"
	DefaultGreeting               = "pipegate ManageSieve proxy ready"
	DefaultMaxCommandsBeforeLogin = 30
	DefaultMaxLineLength          = wire.DefaultMaxLine    // octets of command text, literals excluded
	DefaultMaxLiteral             = wire.DefaultMaxLiteral // octets per literal: room for OAuth tokens
)

// DefaultCapabilities are the capabilities advertised before login besides
// those the proxy derives itself (IMPLEMENTATION, SASL, STARTTLS,
// VERSION): the "SIEVE" extensions and "NOTIFY" methods of Dovecot 2.3's
// Pigeonhole with its default settings, as Dovecot lists them before
// login (MAXREDIRECTS only after). RFC 5804 requires "SIEVE", and
// clients such as sieve-connect refuse a server without it; the proxy
// cannot know the backend's before login, so set Server.Capabilities to
// what the backends offer. After login the client asks the backend itself
// (CAPABILITY goes through the pipe).
var DefaultCapabilities = wire.Capabilities{
	{Name: "SIEVE", Value: "fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext"},
	{Name: "NOTIFY", Value: "mailto"},
}

// ErrServerClosed is returned by Serve after Shutdown
// (gateway.ErrServerClosed).
var ErrServerClosed = gateway.ErrServerClosed

// Server is a ManageSieve reverse proxy (RFC 5804): a gateway.Server
// (listeners, limits, routing, backends, the pipe, Shutdown, SetRouter,
// SetTLSConfig) speaking ManageSieve. Set the fields, then call Serve for
// each listener (or ServeConn for each accepted connection). Only Router
// is required.
type Server struct {
	gateway.Server // its Protocol is set by Serve and ServeConn

	// Implementation is the "IMPLEMENTATION" capability; "":
	// DefaultImplementation.
	Implementation string
	// Greeting is the text of the OK that ends the capability greeting;
	// "": Hostname and DefaultGreeting.
	Greeting string
	// Capabilities are advertised before login after IMPLEMENTATION and
	// SASL (SIEVE, NOTIFY, MAXREDIRECTS, ...); nil: DefaultCapabilities.
	// Entries named IMPLEMENTATION, SASL, STARTTLS or VERSION are ignored:
	// the proxy says those itself.
	Capabilities wire.Capabilities

	// TrustedNetworks are the proxies in front (another pipegate, a
	// Dovecot proxy) whose XCLIENT is taken, as Dovecot's
	// login_trusted_networks: a client from these addresses sees
	// "XCLIENT" in the capabilities and may tell the address of its own
	// client (ADDR, PORT) and the proxy hops left (TTL, which ends a
	// routing loop between proxies; see gateway.DefaultProxyTTL). From
	// any other address XCLIENT is an unknown command. nil: nobody.
	TrustedNetworks []netip.Prefix

	MaxCommandsBeforeLogin int   // 0: DefaultMaxCommandsBeforeLogin
	MaxLineLength          int   // octets of command text; 0: DefaultMaxLineLength
	MaxLiteral             int64 // octets per literal; 0: DefaultMaxLiteral

	once sync.Once
}

// NewMetrics makes the ManageSieve metrics (pipegate_sieve_*, see
// gateway.NewMetrics) and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *gateway.Metrics {
	return gateway.NewMetrics(reg, "sieve")
}

func (s *Server) setProtocol() {
	s.once.Do(func() { s.SetProtocol(protocol{s}) })
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown (then it returns ErrServerClosed) or an accept error that
// is not temporary. ManageSieve's port 4190 is plain with STARTTLS
// (implicitTLS false); with implicitTLS, connections start with a TLS
// handshake and TLSConfig must be set.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.setProtocol()
	return s.Server.Serve(l, implicitTLS)
}

// ServeConn serves one connection and returns when the proxy is done with
// it: after LOGOUT or an error, or once the logged-in session was handed
// to the pipe (which then owns the connection). ctx cancels the pre-login
// dialogue.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, implicitTLS bool) {
	s.setProtocol()
	s.Server.ServeConn(ctx, c, implicitTLS)
}

// protocol is ManageSieve for the gateway.
type protocol struct{ srv *Server }

func (protocol) Name() string { return "sieve" }

func (p protocol) Serve(s *gateway.Session) { newConn(p.srv, s).run() }

// Refuse says goodbye before the greeting: BYE (TRYLATER) "text".
func (protocol) Refuse(s *gateway.Session, e *gateway.Error) {
	_, _ = s.Writer().Write((&wire.Response{Type: "BYE", Code: "TRYLATER", Text: wire.SafeText(e.Text)}).Append(nil))
}

// Farewell is gateway.Farewell: BYE (TRYLATER) "text", which a server may
// send at any time before it closes (RFC 5804 section 1.3).
func (protocol) Farewell(text string) []byte {
	return (&wire.Response{Type: "BYE", Code: "TRYLATER", Text: wire.SafeText(text)}).Append(nil)
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

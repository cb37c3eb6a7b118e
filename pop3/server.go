package pop3

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3/wire"
	"github.com/pipegate/pipegate/route"
)

// Defaults used when the Server's POP3 fields are zero.
const (
	DefaultGreeting               = "pipegate POP3 proxy ready."
	DefaultMaxCommandsBeforeLogin = 30
	// DefaultMaxLineLength bounds a command line, CRLF included. RFC 2449
	// keeps clients to 255 octets (wire.DefaultMaxLine), but Dovecot takes
	// longer lines, and fetchmail and poplib send a long password (a
	// token) in PASS: refusing it would end a session Dovecot serves.
	DefaultMaxLineLength = 1024
	// DefaultMaxAuthLineLength bounds an AUTH line with its initial
	// response. RFC 5034 keeps it to 255 octets, but clients send OAuth
	// tokens there anyway; this is RFC 4954's figure for a SASL line.
	DefaultMaxAuthLineLength = wire.DefaultMaxSASLLine
)

// ErrServerClosed is returned by Serve after Shutdown
// (gateway.ErrServerClosed).
var ErrServerClosed = gateway.ErrServerClosed

// Server is a POP3 reverse proxy: a gateway.Server (listeners, limits,
// routing, backends, the pipe, Shutdown, SetRouter, SetTLSConfig) speaking
// POP3. Set the fields, then call Serve for each listener (or ServeConn for
// each accepted connection). Only Router is required.
type Server struct {
	gateway.Server // its Protocol is set by Serve and ServeConn

	// Greeting is the text of the "+OK" greeting; "": Hostname and
	// DefaultGreeting. No APOP timestamp is offered.
	Greeting string
	// Capabilities are added to the pre-login CAPA answer, one capability
	// per string ("TOP", "UIDL", "EXPIRE NEVER"), as nginx's
	// pop3_capabilities: for clients that ask CAPA only before login, name
	// what every backend has. The gateway's own (USER, SASL, STLS,
	// RESP-CODES, AUTH-RESP-CODE, PIPELINING) cannot be given here.
	// After login the backend answers CAPA itself.
	Capabilities []string

	// TrustedNetworks are the proxies in front (another pipegate, a
	// Dovecot or nginx proxy) whose XCLIENT is taken, as Dovecot's
	// login_trusted_networks: a client from these addresses is greeted
	// with "[XCLIENT]" and may tell the address of its own client (ADDR,
	// PORT) and the proxy hops left (TTL, which ends a routing loop
	// between proxies; see gateway.DefaultProxyTTL). From any other
	// address XCLIENT is refused as an invalid keyword. nil: nobody.
	TrustedNetworks []netip.Prefix

	MaxCommandsBeforeLogin int // 0: DefaultMaxCommandsBeforeLogin
	MaxLineLength          int // octets per command line with CRLF; 0: DefaultMaxLineLength
	MaxAuthLineLength      int // octets of an AUTH line with its initial response; 0: DefaultMaxAuthLineLength

	once sync.Once
}

// NewMetrics makes the POP3 metrics (pipegate_pop3_*, see
// gateway.NewMetrics) and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *gateway.Metrics {
	return gateway.NewMetrics(reg, "pop3")
}

func (s *Server) setProtocol() {
	s.once.Do(func() { s.SetProtocol(protocol{s}) })
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown (then it returns ErrServerClosed) or an accept error that
// is not temporary. With implicitTLS, connections start with a TLS
// handshake (port 995) and TLSConfig must be set.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.setProtocol()
	return s.Server.Serve(l, implicitTLS)
}

// ServeConn serves one connection and returns when the proxy is done with
// it: after QUIT or an error, or once the logged-in session was handed to
// the pipe (which then owns the connection). With implicitTLS the
// connection starts with a TLS handshake. ctx cancels the pre-login
// dialogue.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, implicitTLS bool) {
	s.setProtocol()
	s.Server.ServeConn(ctx, c, implicitTLS)
}

// protocol is POP3 for the gateway.
type protocol struct{ srv *Server }

func (protocol) Name() string { return "pop3" }

func (p protocol) Serve(s *gateway.Session) { newConn(p.srv, s).run() }

// Refuse answers a connection over the limits before any greeting.
func (protocol) Refuse(s *gateway.Session, e *gateway.Error) {
	_, _ = s.Writer().Write(errorResponse(e).Append(nil))
}

// The backend URL schemes: pop3:// (plain), pop3+starttls:// (STLS) and
// pop3s:// (implicit TLS). The client's address goes by XCLIENT unless
// the URL says client_addr=proxy or none.
func init() {
	modes := []route.ClientAddrMode{route.ClientAddrXCLIENT}
	for name, sc := range map[string]route.Scheme{
		"pop3":          {TLS: route.TLSNone, Port: "110"},
		"pop3+starttls": {TLS: route.TLSStartTLS, Port: "110"},
		"pop3s":         {TLS: route.TLSImplicit, Port: "995"},
	} {
		sc.Protocol, sc.ClientAddr, sc.ClientAddrModes = "pop3", route.ClientAddrXCLIENT, modes
		route.RegisterScheme(name, sc)
	}
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

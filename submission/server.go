package submission

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission/wire"
)

// Name is the protocol's name: route.Request.Protocol, the backends'
// route.Backend.Protocol, the metrics' and the log's prefix. (nginx's
// auth_http says "smtp"; the route source maps it.)
const Name = "submission"

// Defaults used when the Server's submission fields are zero.
const (
	DefaultGreeting              = "pipegate"
	DefaultMaxCommandsBeforeAuth = 30
	// DefaultMaxAuthCommand bounds an AUTH command line with its initial
	// response: RFC 4954 section 4 asks clients to keep it within 512
	// octets, but XOAUTH2 and OAUTHBEARER clients send their token there;
	// this is the limit of an AUTH exchange line.
	DefaultMaxAuthCommand = wire.DefaultMaxAuthLine
)

// ErrServerClosed is returned by Serve after Shutdown
// (gateway.ErrServerClosed).
var ErrServerClosed = gateway.ErrServerClosed

// Server is a mail submission proxy (RFC 6409): a gateway.Server
// (listeners, limits, routing, backends, the pipe, Shutdown, SetRouter,
// SetTLSConfig) speaking SMTP until AUTH. Set the fields, then call Serve
// for each listener (or ServeConn for each accepted connection). Only
// Router is required. gateway.Server.Hostname names the proxy in the
// greeting and the EHLO reply (default: os.Hostname).
type Server struct {
	gateway.Server // its Protocol is set by Serve and ServeConn

	// Greeting is the text after "220 <Hostname> ESMTP"; "":
	// DefaultGreeting.
	Greeting string
	// Extensions are EHLO keywords (with parameters, such as "SIZE
	// 52428800" or "8BITMIME") advertised before AUTH besides PIPELINING,
	// ENHANCEDSTATUSCODES, STARTTLS and AUTH. Clients seldom ask EHLO
	// again after AUTH, so they use these with the backend: list only
	// what every backend of the routes supports. STARTTLS, AUTH, XCLIENT
	// and the keywords the proxy lists itself are ignored here.
	Extensions []string

	// TrustedNetworks are the proxies in front (another pipegate, a
	// Dovecot proxy, Postfix's smtpd_authorized_xclient_hosts' peers)
	// whose XCLIENT is taken, as Dovecot's login_trusted_networks: a
	// client from these addresses sees XCLIENT in the EHLO reply and may
	// tell the address of its own client (ADDR, PORT) and the proxy hops
	// left (TTL, which ends a routing loop between proxies; see
	// gateway.DefaultProxyTTL). From any other address XCLIENT is "502
	// 5.5.1 Command not implemented". nil: nobody.
	TrustedNetworks []netip.Prefix

	MaxCommandsBeforeAuth int // commands (bad ones too) before AUTH succeeds; 0: DefaultMaxCommandsBeforeAuth
	MaxAuthCommand        int // octets of an AUTH command line; 0: DefaultMaxAuthCommand

	once sync.Once
}

// NewMetrics makes the submission metrics (pipegate_submission_*, see
// gateway.NewMetrics) and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *gateway.Metrics {
	return gateway.NewMetrics(reg, Name)
}

func (s *Server) setProtocol() {
	s.once.Do(func() {
		host := s.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		if host == "" {
			host = "localhost"
		}
		s.SetProtocol(protocol{srv: s, host: wire.SafeText(host)})
	})
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown (then it returns ErrServerClosed) or an accept error that
// is not temporary. With implicitTLS, connections start with a TLS
// handshake (port 465, RFC 8314) and TLSConfig must be set; else STARTTLS
// is offered when TLSConfig is set (port 587).
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.setProtocol()
	return s.Server.Serve(l, implicitTLS)
}

// ServeConn serves one connection and returns when the proxy is done with
// it: after QUIT or an error, or once the authenticated session was handed
// to the pipe (which then owns the connection). With implicitTLS the
// connection starts with a TLS handshake. ctx cancels the dialogue before
// AUTH.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, implicitTLS bool) {
	s.setProtocol()
	s.Server.ServeConn(ctx, c, implicitTLS)
}

// protocol is submission for the gateway.
type protocol struct {
	srv  *Server
	host string // in the greeting, EHLO reply and 421 goodbyes
}

func (protocol) Name() string { return Name }

func (p protocol) Serve(s *gateway.Session) { newConn(p.srv, p.host, s).run() }

// Refuse answers a connection over the limits before any greeting: "421"
// is the goodbye SMTP allows in place of the greeting (RFC 5321 section
// 3.1).
func (p protocol) Refuse(s *gateway.Session, e *gateway.Error) {
	b, _ := (&wire.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{p.host + " " + e.Text}}).Append(nil)
	_, _ = s.Writer().Write(b)
}

// Farewell is gateway.Farewell: 421, the reply with which an SMTP server
// closes the channel (RFC 5321 section 3.8).
func (p protocol) Farewell(text string) []byte {
	b, _ := (&wire.Reply{Code: 421, Enhanced: "4.3.2", Lines: []string{p.host + " " + text}}).Append(nil)
	return b
}

func init() {
	// The client's address goes by XCLIENT (Dovecot and Postfix), or a
	// PROXY header, or not at all.
	modes := []route.ClientAddrMode{route.ClientAddrXCLIENT}
	for name, sc := range map[string]route.Scheme{
		"submission":          {TLS: route.TLSNone, Port: "587"},
		"submission+starttls": {TLS: route.TLSStartTLS, Port: "587"},
		"submissions":         {TLS: route.TLSImplicit, Port: "465"},
	} {
		sc.Protocol, sc.ClientAddr, sc.ClientAddrModes = Name, route.ClientAddrXCLIENT, modes
		sc.XClientLogin = true // login=xclient: XCLIENT LOGIN=, as nginx's default
		route.RegisterScheme(name, sc)
	}
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// Defaults used when the Server's fields are zero.
const (
	DefaultLoginTimeout     = 60 * time.Second
	DefaultMaxLoginFailures = 3
	DefaultDialTimeout      = 10 * time.Second
	DefaultBackendTimeout   = 30 * time.Second
	DefaultMaxPreLoginPerIP = 100
	writeTimeout            = 30 * time.Second
	// farewellGrace is how long past the login deadline a write to a
	// client may still take: the login timeout's goodbye.
	farewellGrace = 5 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("gateway: server closed")

// Server is a mail gateway for one protocol. Set the fields, then call
// Serve for each listener (or ServeConn for each accepted connection).
// Protocol is required (Serve refuses without it), and so is a router for
// logins: Router, or SetRouter, which may also come after Serve (routes
// that name this server's own address, say); until there is one, every
// login is answered unavailable and logged "no router configured". The
// zero values of the other fields are useful. Fields must not be changed
// once serving has begun: use SetRouter
// and SetTLSConfig to swap the routes and certificates while running (on
// SIGHUP, say).
type Server struct {
	// Protocol speaks the protocol's own dialogue. A Server embedded in a
	// protocol's (imap.Server and the others) gets it through SetProtocol.
	Protocol Protocol

	// Router finds the backends of an account.
	Router route.Router
	// Pools resolves the routes' pool:NAME backends (user affinity on
	// shared storage); nil: such backends are unavailable.
	Pools Pools

	// TLSConfig is the client-side TLS configuration, for STARTTLS on plain
	// listeners and for implicit-TLS listeners. nil: no STARTTLS, and
	// implicit-TLS connections are refused.
	TLSConfig *tls.Config
	// BackendTLS is the base configuration for TLS to backends (RootCAs,
	// client certificates). It is cloned per backend with ServerName set
	// from the route. nil: system roots. Verification is on unless this
	// config turns it off. Sessions with backends are resumed: its
	// ClientSessionCache, or one the server makes (tlsconf.Resuming).
	BackendTLS *tls.Config

	// AllowPlaintextAuth allows logins on connections without TLS. Off by
	// default: plain links refuse them (IMAP advertises LOGINDISABLED).
	AllowPlaintextAuth bool
	// OAuth offers and accepts the SASL mechanisms XOAUTH2 and
	// OAUTHBEARER, which are passed to the backend unchanged.
	OAuth bool

	LoginTimeout     time.Duration // from connect to login; 0: DefaultLoginTimeout
	MaxLoginFailures int           // per connection, then the protocol's goodbye; 0: DefaultMaxLoginFailures

	// Accounts are the rules on user names (allowed characters, lower
	// case, master users); the zero value is Dovecot's defaults.
	Accounts AccountRules
	// FailureDelay holds every failed login's answer until at least this
	// long after its command, whatever the cause (wrong password, unknown
	// account, no route, refused name): 0 means DefaultFailureDelay,
	// negative no floor.
	FailureDelay time.Duration
	// FailureSleep, when set, replaces the wait of FailureDelay (tests
	// check the schedule without waiting): it waits d or until ctx ends
	// (false then).
	FailureSleep func(ctx context.Context, d time.Duration) bool

	// Conns limits connections in total and per client address (nil: no
	// limit). A slot is held until the piped session ends.
	Conns *limit.Conns
	// MaxPreLoginPerIP limits the connections per client address that have
	// not logged in yet (logged-in sessions do not count): 0 means
	// DefaultMaxPreLoginPerIP, negative no limit.
	MaxPreLoginPerIP int
	// PreLoginConns, when set, counts the pre-login connections instead of
	// a limiter made from MaxPreLoginPerIP, so that several Servers (one
	// daemon's listeners, a protocol each) share one limit per client
	// address. limit.NewConns(0, n) makes one.
	PreLoginConns *limit.Conns
	// Penalty delays logins from addresses that failed before (nil: none).
	Penalty *limit.Penalty
	// Proxy says which peers may send a PROXY protocol header (nil: none).
	Proxy *listener.ProxyPolicy

	// Engine runs the piped sessions after login; several Servers may
	// share one. nil: each session is joined by pipe.Join in a goroutine
	// of its own, with PipeOptions. A Server never shuts an Engine down:
	// whoever made it does, after the Servers' Shutdown (see Shutdown).
	Engine      *pipe.Engine
	PipeOptions pipe.Options
	// DrainSpread: when Shutdown's context has a deadline, the piped
	// sessions still open DrainSpread before it are closed one after the
	// other over that window, each with the protocol's farewell, rather
	// than all at the deadline (a reconnection storm). 0: at the deadline.
	// Needs an Engine.
	DrainSpread time.Duration

	DialTimeout    time.Duration // per backend connect; 0: DefaultDialTimeout
	BackendTimeout time.Duration // backend greeting to login answer; 0: DefaultBackendTimeout

	Logger   *slog.Logger // nil: slog.Default()
	Metrics  *Metrics     // nil: none
	Hostname string       // for the greeting and identity; "": submission uses os.Hostname(), the others greet without it

	dyn      atomic.Pointer[dynamic]
	setProto atomic.Pointer[Protocol] // SetProtocol's; before the field
	bufs     bufPool                  // sessions' and backends' bufio

	preLoginConns *limit.Conns // made by init from MaxPreLoginPerIP

	initOnce sync.Once
	baseCtx  context.Context // cancelled when Shutdown gives up
	cancel   context.CancelFunc

	mu        sync.Mutex
	closing   bool // not accepting (Quiesce or Shutdown)
	stopping  bool // Shutdown: no new session either
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{} // before login
	// pipedSessions are the logged-in sessions in the pipe, by ID (their
	// pipe's tag), for a hand-over to another process.
	pipedSessions map[string]*pipedSession
	preLogin      sync.WaitGroup // sessions before login (and their handover)
	piped         sync.WaitGroup // sessions after login, until their afterClose
}

// dynamic is what SetRouter and SetTLSConfig swap.
type dynamic struct {
	router     route.Router
	tls        *tls.Config
	backendTLS *tls.Config
}

// current is what SetRouter and SetTLSConfig set last. The first use
// takes the fields, with one backend TLS session cache for every session
// from then on.
func (s *Server) current() *dynamic {
	if d := s.dyn.Load(); d != nil {
		return d
	}
	s.dyn.CompareAndSwap(nil, &dynamic{router: s.Router, tls: s.TLSConfig, backendTLS: resumingBackends(s.BackendTLS)})
	return s.dyn.Load()
}

// SetRouter replaces the router for logins that start from now on. It is
// safe to call while serving.
func (s *Server) SetRouter(r route.Router) {
	for {
		old := s.dyn.Load()
		d := *s.current()
		d.router = r
		if s.dyn.CompareAndSwap(old, &d) {
			return
		}
	}
}

// SetTLSConfig replaces the client-side and backend TLS configurations for
// connections and backends that start from now on. It is safe to call
// while serving. (A tlsconf.Server reloads its certificate by itself and
// needs no swap.)
func (s *Server) SetTLSConfig(client, backend *tls.Config) {
	for {
		old := s.dyn.Load()
		d := *s.current()
		d.tls, d.backendTLS = client, resumingBackends(backend)
		if s.dyn.CompareAndSwap(old, &d) {
			return
		}
	}
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[net.Listener]struct{}{}
		s.sessions = map[*Session]struct{}{}
		switch {
		case s.PreLoginConns != nil:
			s.preLoginConns = s.PreLoginConns
		case s.MaxPreLoginPerIP >= 0:
			s.preLoginConns = limit.NewConns(0, orInt(s.MaxPreLoginPerIP, DefaultMaxPreLoginPerIP))
		}
	})
}

// SetProtocol sets the Protocol of a Server that other goroutines may
// already use: imap.Server and the others call it from their Serve,
// ServeConn, Adopt and Probe, and a Shutdown from another goroutine may
// come first. A Server that is only used once its Protocol field is set
// needs no call.
func (s *Server) SetProtocol(p Protocol) { s.setProto.Store(&p) }

// proto returns the Protocol: SetProtocol's, else the field's.
func (s *Server) proto() Protocol {
	if p := s.setProto.Load(); p != nil {
		return *p
	}
	return s.Protocol
}

// farewell is the protocol's goodbye with text for a session stopped in
// the pipe (nil when the protocol has none: the connection just closes).
func (s *Server) farewell(text string) []byte {
	if f, ok := s.proto().(Farewell); ok {
		return f.Farewell(text)
	}
	return nil
}

// name is the protocol's name, for the log.
func (s *Server) name() string {
	p := s.proto()
	if p == nil {
		return "gateway"
	}
	return p.Name()
}

// failures is the one path of every failed login.
func (s *Server) failures() *Failures {
	return &Failures{Floor: s.FailureDelay, Penalty: s.Penalty, Observe: s.Metrics.failure, Sleep: s.FailureSleep}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// addListener checks that s can serve l and counts l among the listeners
// Shutdown closes; ErrServerClosed once Shutdown began.
func (s *Server) addListener(l net.Listener, implicitTLS bool) error {
	if s.proto() == nil {
		return fmt.Errorf("gateway: serve %s: no Protocol", l.Addr())
	}
	if s.Metrics != nil && s.Metrics.protocol != s.name() {
		return fmt.Errorf("%s: serve %s: Metrics are for %q", s.name(), l.Addr(), s.Metrics.protocol)
	}
	if implicitTLS && s.current().tls == nil {
		return fmt.Errorf("%s: serve %s: implicit TLS needs Server.TLSConfig", s.name(), l.Addr())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	return nil
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown (then it returns ErrServerClosed) or an accept error that
// is not temporary. With implicitTLS, connections start with a TLS
// handshake (port 993, 995, 465) and TLSConfig must be set. When Serve
// returns without serving (a Shutdown that came first, a bad Server) or
// on an accept error, it closes l; once serving, Shutdown and Quiesce
// close it.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.init()
	if err := s.addListener(l, implicitTLS); err != nil {
		l.Close()
		return err
	}
	w := newWorkers(workerIdle, maxIdleWorkers)
	defer func() {
		w.close()
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		// The session is counted in before Accept: a connection accepted
		// while Quiesce or Shutdown closes the listener is then one they
		// wait for (served, or told goodbye), not one dropped unread.
		if !s.track() {
			return ErrServerClosed
		}
		c, err := l.Accept()
		if err != nil {
			s.preLogin.Done()
			if s.isClosing() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn(s.name()+": accept", "listener", l.Addr().String(), "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.baseCtx.Done():
					return ErrServerClosed
				}
				continue
			}
			l.Close() // no Shutdown closes it now
			return fmt.Errorf("%s: accept on %s: %w", s.name(), l.Addr(), err)
		}
		backoff = 0
		w.run(func() { s.serveAccepted(c, implicitTLS) })
	}
}

// isTemporary reports accept errors worth retrying (EMFILE and the like).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	var ne net.Error
	return errors.As(err, &t) && t.Temporary() || errors.As(err, &ne) && ne.Timeout()
}

// serveAccepted serves one accepted connection, on a worker.
func (s *Server) serveAccepted(c net.Conn, implicitTLS bool) {
	defer s.preLogin.Done()
	s.serve(s.baseCtx, c, implicitTLS)
}

// ServeConn serves one connection and returns when the gateway is done
// with it: after logout or an error, or once the logged-in session was
// handed to the pipe (which then owns the connection). With implicitTLS
// the connection starts with a TLS handshake. ctx cancels the pre-login
// dialogue.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, implicitTLS bool) {
	s.init()
	if s.proto() == nil || !s.track() {
		c.Close()
		return
	}
	defer s.preLogin.Done()
	ctx, cancel := mergeCancel(ctx, s.baseCtx)
	defer cancel()
	s.serve(ctx, c, implicitTLS)
}

// mergeCancel returns a context done when either a or b is done, carrying
// a's values.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// track counts a pre-login session in, unless shutting down.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.preLogin.Add(1)
	return true
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// addSession registers a pre-login session, unless Shutdown has begun: a
// connection accepted as Quiesce closed the listeners (a binary upgrade)
// is still served here.
func (s *Server) addSession(ss *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.sessions[ss] = struct{}{}
	return true
}

func (s *Server) removeSession(ss *Session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/internal/drain"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/tlsconf"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("forward: server closed")

// Deps are what a Server shares with the rest of the process.
type Deps struct {
	Log     *slog.Logger // nil: discard
	Metrics *Metrics     // nil: no metrics
	// Listen opens a forward's listener for a Set (addr as Config.Listen);
	// nil: Listen. A process taking over from another (a binary upgrade)
	// gives the sockets its predecessor handed over.
	Listen func(addr string) (net.Listener, error)
}

// listen opens addr with d.Listen, else Listen.
func (d Deps) listen(addr string) (net.Listener, error) {
	if d.Listen != nil {
		return d.Listen(addr)
	}
	return Listen(addr)
}

// Server runs one forward: it accepts connections on the listeners given
// to Serve and pipes each to an upstream. Its methods are safe for
// concurrent use.
type Server struct {
	deps   Deps
	health healthBook
	gen    atomic.Pointer[generation]
	pairs  pairBook // piped pairs, for a hand-over to another process

	ctx    context.Context // cancelled by Shutdown: aborts handshakes and dials
	cancel context.CancelCauseFunc

	mu            sync.Mutex
	shutting      bool
	stopped       bool          // StopAccepting: listeners closed, set-ups go on
	stopAccept    chan struct{} // closed by the first StopAccepting: Serve on the loops returns
	listeners     map[net.Listener]struct{}
	pending       map[net.Conn]struct{}       // accepted, not yet handed to an engine
	loopListeners map[*pipe.Listener]struct{} // listeners the event loops accept on
	engines       []*pipe.Engine              // one per distinct pipe.Options seen
	wg            sync.WaitGroup              // Serve loops and connection set-ups
	goAccepts     int                         // Go accept loops running (StopAccepting waits)
	settingUp     int                         // connections in handleConn (StopAccepting waits)
	settled       chan struct{}               // closed when either count drops; nil: none waits
}

// generation is one loaded Config, swapped whole on Reload.
type generation struct {
	cfg              Config
	name             string
	tls              *tls.Config
	routes           []route
	fallback         *pool // Config.Upstreams; nil when empty
	sendProxy        string
	proxy            *listener.ProxyPolicy // nil: no PROXY header expected
	conns            *limit.Conns
	engine           *pipe.Engine
	metrics          *forwardMetrics
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	backoff          time.Duration
	keepAlive        time.Duration
	loops            bool // the event loops set connections up alone (loopable)
}

type route struct {
	pattern string
	pool    *pool
}

// New checks cfg and returns a Server ready to Serve.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		deps:          deps,
		listeners:     map[net.Listener]struct{}{},
		pending:       map[net.Conn]struct{}{},
		loopListeners: map[*pipe.Listener]struct{}{},
		stopAccept:    make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	g, err := s.newGeneration(cfg, nil)
	if err != nil {
		s.cancel(nil)
		return nil, err
	}
	s.engines = append(s.engines, g.engine)
	s.gen.Store(g)
	return s, nil
}

// Config returns the configuration in use for new connections.
func (s *Server) Config() Config { return s.gen.Load().cfg }

// Reload makes new connections use cfg; connections already set up keep
// the configuration they started with, but new limits count them. The
// listen address is not
// re-read: to move a forward, start a new Server and Shutdown this one.
// On error the old configuration stays.
func (s *Server) Reload(cfg Config) error {
	commit, err := s.prepareReload(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// prepareReload checks cfg and builds what Reload would serve; commit
// serves it. Nothing changes until then (Set.Apply prepares every forward
// before it changes any). The caller keeps reloads of s in order.
func (s *Server) prepareReload(cfg Config) (commit func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return nil, ErrServerClosed
	}
	g, err := s.newGeneration(cfg, s.gen.Load())
	if err != nil {
		return nil, err
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.shutting {
			return
		}
		if g.engine != s.gen.Load().engine {
			s.engines = append(s.engines, g.engine)
		}
		g.conns.SetLimits(cfg.MaxConns, cfg.MaxConnsPerIP)
		s.gen.Store(g)
	}, nil
}

// newGeneration builds a generation from cfg, keeping the engine of prev
// when its settings did not change and always the connection counter of
// prev, so that limits keep counting the connections already open (Reload
// sets the counter's new limits once nothing can fail).
func (s *Server) newGeneration(cfg Config, prev *generation) (*generation, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &generation{
		cfg:              cfg,
		name:             cfg.name(),
		tls:              cfg.TLS,
		sendProxy:        cfg.SendProxy,
		dialTimeout:      orDefault(cfg.DialTimeout, DefaultDialTimeout),
		handshakeTimeout: orDefault(cfg.HandshakeTimeout, DefaultHandshakeTimeout),
		backoff:          orDefault(cfg.Backoff, DefaultBackoff),
		keepAlive:        cfg.TCPKeepAlive,
	}
	upstreamTLS := tlsconf.Resuming(cfg.UpstreamTLS) // one session cache for the generation's upstreams
	newPool := func(field string, addrs []string) (*pool, error) {
		p := &pool{balance: cfg.Balance}
		for _, a := range addrs {
			u, err := newUpstream(a, upstreamTLS, &s.health)
			if err != nil {
				return nil, &FieldError{Field: field, Err: err}
			}
			p.upstreams = append(p.upstreams, u)
		}
		return p, nil
	}
	for _, r := range cfg.Routes {
		p, err := newPool("sni", r.Upstreams)
		if err != nil {
			return nil, err
		}
		g.routes = append(g.routes, route{pattern: r.ServerName, pool: p})
	}
	if len(cfg.Upstreams) > 0 {
		p, err := newPool("to", cfg.Upstreams)
		if err != nil {
			return nil, err
		}
		g.fallback = p
	}
	if cfg.AcceptProxy {
		network, _, _ := SplitAddr(cfg.Listen)
		g.proxy = &listener.ProxyPolicy{
			Trusted:       cfg.TrustedProxies,
			TrustUnix:     network == "unix",
			HeaderTimeout: g.handshakeTimeout,
			Required:      true,
		}
	}
	g.loops = !cfg.GoAccept && g.loopable()
	opts := pipe.Options{IdleTimeout: cfg.IdleTimeout, MaxLifetime: cfg.MaxLifetime, HalfCloseLinger: cfg.HalfCloseLinger}
	if prev != nil && prev.engine.Options == opts && prev.engine.TLSOnGoroutines == cfg.TLSOnGoroutines {
		g.engine = prev.engine
	} else {
		g.engine = &pipe.Engine{Options: opts, TLSOnGoroutines: cfg.TLSOnGoroutines}
	}
	// One counter for the life of the Server, even while unlimited, so that
	// new limits count the connections already open.
	if prev != nil {
		g.conns = prev.conns
	} else {
		g.conns = limit.NewConns(cfg.MaxConns, cfg.MaxConnsPerIP)
	}
	if prev != nil && prev.name == g.name {
		g.metrics = prev.metrics
	} else {
		g.metrics = s.deps.Metrics.forward(g.name)
	}
	return g, nil
}

// pick returns the pool for a TLS server name ("" when none or not TLS).
func (g *generation) pick(serverName string) *pool {
	if serverName != "" {
		for _, r := range g.routes {
			if matchRoute(r.pattern, serverName) {
				return r.pool
			}
		}
	}
	return g.fallback
}

// ListenAndServe listens on Config.Listen and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := Listen(s.Config().Listen)
	if err != nil {
		return fmt.Errorf("forward %s: %w", s.gen.Load().name, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown, which closes ln. It
// always returns a non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting || s.stopped {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if s.serveOnLoops(ln) {
		return ErrServerClosed
	}
	if !s.enterGoAccept() {
		ln.Close()
		return ErrServerClosed
	}
	defer s.leaveGoAccept()

	var pause time.Duration // after temporary accept errors such as EMFILE
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing() || s.acceptStopped() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.deps.Log.Warn("accept failed; retrying", "forward", s.gen.Load().name, "err", err, "retry_in", pause)
				select {
				case <-time.After(pause):
				case <-s.ctx.Done():
				}
				continue
			}
			return fmt.Errorf("forward %s: accept: %w", s.gen.Load().name, err)
		}
		pause = 0
		s.mu.Lock()
		if s.shutting {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.pending[c] = struct{}{}
		s.wg.Add(1)
		s.settingUp++
		s.mu.Unlock()
		go s.handleConn(c)
	}
}

func isTemporary(err error) bool {
	t, ok := errors.AsType[interface {
		error
		Temporary() bool
	}](err)
	return ok && t.Temporary()
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// Shutdown stops accepting, aborts connections still being set up, waits
// for the piped connections to end and force-closes those still open when
// ctx ends. It returns ctx's error in that case. It is ShutdownSpread
// without a spread.
func (s *Server) Shutdown(ctx context.Context) error { return s.ShutdownSpread(ctx, 0) }

// ShutdownSpread is Shutdown, but when ctx has a deadline the piped
// connections still open spread before it are stopped one after the other
// over that window (their log line says reason=stopped), so that their
// clients do not all reconnect at the same instant: every pair of the
// server's engines, those the event loops accepted themselves
// (loopaccept.go) included. It returns an error (context.DeadlineExceeded)
// when it stopped any.
func (s *Server) ShutdownSpread(ctx context.Context, spread time.Duration) error {
	s.mu.Lock()
	s.shutting = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.pending {
		c.Close()
	}
	engines := s.engines
	loopListeners := s.loopListeners
	s.loopListeners = map[*pipe.Listener]struct{}{}
	s.mu.Unlock()
	for pl := range loopListeners { // outside s.mu: their Accept may wait for it
		pl.Close()
	}
	s.cancel(ErrServerClosed)
	s.wg.Wait()

	errs := make([]error, len(engines)+1)
	drained := make(chan struct{})
	go shutdownEngines(ctx, engines, errs, drained)
	name := s.gen.Load().name
	open := func() []*pipe.Handle {
		var hs []*pipe.Handle
		for _, e := range engines {
			hs = append(hs, e.Handles()...)
		}
		return hs
	}
	sp := drain.Spread{Window: spread, Open: open, Started: func(n int, window time.Duration) {
		s.deps.Log.Info("closing the connections left, spread", "forward", name, "connections", n, "window", window)
	}}
	if n := sp.Run(ctx, drained); n > 0 {
		errs[len(engines)] = fmt.Errorf("forward %s: %d connections stopped in the drain spread: %w", name, n, context.DeadlineExceeded)
	}
	<-drained
	return errors.Join(errs...)
}

// shutdownEngines shuts the engines down at the same time, each error in
// errs, and closes drained once all have returned.
func shutdownEngines(ctx context.Context, engines []*pipe.Engine, errs []error, drained chan<- struct{}) {
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go shutdownEngine(ctx, e, &errs[i], &wg)
	}
	wg.Wait()
	close(drained)
}

func shutdownEngine(ctx context.Context, e *pipe.Engine, err *error, wg *sync.WaitGroup) {
	defer wg.Done()
	*err = e.Shutdown(ctx)
}

// EngineStats sums the Stats of the engines this server has used (one per
// distinct pipe.Options seen across reloads).
func (s *Server) EngineStats() pipe.Stats {
	s.mu.Lock()
	engines := s.engines
	s.mu.Unlock()
	var sum pipe.Stats
	for _, e := range engines {
		st := e.Stats()
		sum.Open += st.Open
		sum.OnLoops += st.OnLoops
		sum.Total += st.Total
		sum.BytesAToB += st.BytesAToB
		sum.BytesBToA += st.BytesBToA
		for f, n := range st.Fallbacks {
			if sum.Fallbacks == nil {
				sum.Fallbacks = map[pipe.Fallback]uint64{}
			}
			sum.Fallbacks[f] += n
		}
	}
	return sum
}

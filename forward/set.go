package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/internal/listenaddr"
	"github.com/pipegate/pipegate/pipe"
)

// Set runs the forwards of one process and makes them match a new list on
// each Apply (a daemon's start and each SIGHUP):
//
//	set := forward.NewSet(forward.Deps{Log: log, Metrics: metrics})
//	drain := forward.Drain{Timeout: 30 * time.Second, Spread: 10 * time.Second}
//	if err := set.Apply(cfgs, drain); err != nil {
//		return err // a listener could not be opened: nothing runs
//	}
//	// on SIGHUP: set.Apply(newCfgs, drain) — on error the running set stays
//	// on SIGTERM: set.Shutdown(ctx)
//
// A forward is known by its name, else by its listen address. One that
// keeps its address is reloaded in place (Server.Reload: its listener and
// open connections stay); a new one, or one whose address changed, gets a
// new listener; one no longer listed (or moved) stops accepting and drains
// in the background. Its methods are safe for concurrent use.
type Set struct {
	deps Deps

	mu      sync.Mutex
	servers map[string]*running // by key
	closed  bool
	spread  time.Duration // the last Apply's Drain.Spread, for Shutdown

	retireCtx    context.Context // ends at Shutdown's deadline
	retireCancel context.CancelFunc
	retired      sync.WaitGroup
}

// running is one forward of a Set.
type running struct {
	srv    *Server
	listen string        // as configured
	addr   net.Addr      // as listened on (port 0 resolved)
	done   chan struct{} // closed when Serve returns
}

// Drain is how a Set's forwards drain: those that an Apply removes for at
// most Timeout; those still open Spread before the drain's end (Timeout, or
// Shutdown's deadline) are stopped one after the other over that window
// (Server.ShutdownSpread). Spread 0: all at the end.
type Drain struct {
	Timeout time.Duration
	Spread  time.Duration
}

// Listening is a forward of a Set and the address it accepts on.
type Listening struct {
	Name string // Config.Name, else Config.Listen
	Addr string // "host:port" or "unix:/path", port 0 resolved
}

// NewSet returns an empty Set whose forwards share deps.
func NewSet(deps Deps) *Set {
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Set{deps: deps, servers: map[string]*running{}}
	s.retireCtx, s.retireCancel = context.WithCancel(context.Background())
	return s
}

// key identifies a forward across Applies: its name, else its listen
// address.
func key(c Config) string {
	if c.Name != "" {
		return "name " + c.Name
	}
	return "listen " + c.Listen
}

// CheckUnique rejects two forwards with one identity (a name, else a
// listen address) or on one address (port 0 excepted: each gets its own
// port). It returns the index of the second forward and a *FieldError.
func CheckUnique(cfgs []Config) (int, error) {
	keys := map[string]int{}
	for i, c := range cfgs {
		if j, ok := keys[key(c)]; ok {
			if c.Name != "" {
				return i, fieldErr("name", "%q is also the name of forward %d", c.Name, j)
			}
			return i, fieldErr("name", "missing: forward %d listens on %s too; name both to tell them apart", j, c.Listen)
		}
		keys[key(c)] = i
		for j, e := range cfgs[:i] {
			if listenaddr.Conflict(e.Listen, c.Listen) { // 0.0.0.0:80 and :80 too
				return i, fieldErr("listen", "%s: forward %d listens there too (%s)", c.Listen, j, e.Listen)
			}
		}
	}
	return 0, nil
}

// logCertificates says which certificates c's clients are served; one
// expired or not yet valid is a warning.
func (s *Set) logCertificates(c Config) {
	if c.tlsServed == nil {
		return
	}
	now := time.Now()
	for _, ci := range c.tlsServed() {
		lvl := slog.LevelInfo
		if !ci.Valid(now) {
			lvl = slog.LevelWarn
		}
		s.deps.Log.Log(context.Background(), lvl, "forward tls certificate", "forward", c.name(), "cert", ci.String(), "file", ci.File)
	}
}

// Apply makes the running forwards match cfgs. Forwards that stop drain
// for at most drain.Timeout (less when Shutdown's deadline comes first),
// then their open connections are closed, spread over drain.Spread; a
// later Shutdown spreads over the last Apply's drain.Spread. When a config
// is invalid, a new address cannot be listened on or a running forward
// cannot take its new settings, nothing changes (certificates re-read by
// LoadFile included) and the error says which forward.
func (s *Set) Apply(cfgs []Config, drain Drain) error {
	if i, err := CheckUnique(cfgs); err != nil {
		return fmt.Errorf("forward %s: %w", cfgs[i].name(), err)
	}
	for i := range cfgs {
		if err := cfgs[i].Validate(); err != nil {
			return fmt.Errorf("forward %s: %w", cfgs[i].name(), err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.spread = drain.Spread
	s.adoptRenamed(cfgs)
	fresh := map[string]net.Listener{}
	closeFresh := func() {
		for _, ln := range fresh {
			ln.Close()
		}
	}
	for _, c := range cfgs {
		if r := s.servers[key(c)]; r != nil && r.listen == c.Listen {
			continue
		}
		ln, err := s.deps.listen(c.Listen)
		if err != nil {
			closeFresh()
			return fmt.Errorf("forward %s: listen: %w", c.name(), err)
		}
		fresh[key(c)] = ln
	}
	// Every new Server, and every running one's new settings, before any
	// change, so that a failure changes nothing.
	started := map[string]*Server{}
	reloads := map[string]func(){}
	for _, c := range cfgs {
		var err error
		if fresh[key(c)] == nil {
			reloads[key(c)], err = s.servers[key(c)].srv.prepareReload(c)
		} else {
			started[key(c)], err = New(c, s.deps)
		}
		if err != nil {
			for _, srv := range started {
				if srv != nil {
					srv.Shutdown(context.Background()) // never served: returns at once
				}
			}
			closeFresh()
			return fmt.Errorf("forward %s: %w", c.name(), err)
		}
	}
	// Certificates, client CAs and ticket keys re-read from the same files
	// are served from here on, not before.
	for _, c := range cfgs {
		if c.tlsCommit != nil {
			c.tlsCommit()
		}
		s.logCertificates(c)
	}
	var retire []*running
	keep := map[string]bool{}
	for _, c := range cfgs {
		k := key(c)
		keep[k] = true
		r := s.servers[k]
		if srv := started[k]; srv == nil {
			reloads[k]()
			continue
		}
		if r != nil {
			retire = append(retire, r) // moved to another address
		}
		ln := fresh[k]
		r = &running{srv: started[k], listen: c.Listen, addr: ln.Addr(), done: make(chan struct{})}
		s.servers[k] = r
		s.deps.Log.Info("forward listening", "forward", c.name(), "addr", AddrString(ln.Addr()),
			"to", c.Upstreams, "sni_routes", len(c.Routes), "tls", c.TLS != nil, "to_tls", c.UpstreamTLS != nil,
			"go_accept", c.GoAccept, "tls_on_goroutines", c.TLSOnGoroutines)
		go serveSet(r.srv, ln, r.done, s.deps.Log, c.name())
	}
	for k, r := range s.servers {
		if !keep[k] {
			delete(s.servers, k)
			retire = append(retire, r)
		}
	}
	for _, r := range retire {
		s.deps.Log.Info("forward removed or moved; draining its connections", "forward", r.srv.gen.Load().name, "listen", r.listen,
			"drain_timeout", drain.Timeout, "drain_spread", drain.Spread)
		s.retired.Add(1)
		go retireFromSet(s.retireCtx, drain, r, s.deps.Log, &s.retired)
	}
	return nil
}

// adoptRenamed lets a forward whose name changed but whose (fixed)
// address did not keep its listener: the running server is filed under the
// new name and reloaded in place instead of clashing with a new listener.
func (s *Set) adoptRenamed(cfgs []Config) {
	wanted := map[string]bool{}
	for _, c := range cfgs {
		wanted[key(c)] = true
	}
	for _, c := range cfgs {
		k := key(c)
		if s.servers[k] != nil || strings.HasSuffix(c.Listen, ":0") {
			continue
		}
		for oldKey, r := range s.servers {
			if !wanted[oldKey] && r.listen == c.Listen {
				delete(s.servers, oldKey)
				s.servers[k] = r
				break
			}
		}
	}
}

// Listening lists the running forwards, by name.
func (s *Set) Listening() []Listening {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []Listening
	for _, r := range s.servers {
		l = append(l, Listening{Name: r.srv.gen.Load().name, Addr: AddrString(r.addr)})
	}
	slices.SortFunc(l, func(a, b Listening) int { return strings.Compare(a.Name, b.Name) })
	return l
}

// Shutdown stops every forward, those running and those still draining
// after an Apply removed them: it stops accepting, waits for open
// connections and closes those still open when ctx ends (spread as the
// last Apply's Drain says), then returns an error. Apply fails after
// Shutdown.
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.servers = map[string]*running{}
	spread := s.spread
	s.mu.Unlock()
	var wg sync.WaitGroup
	var forced atomic.Bool
	for _, r := range servers {
		wg.Add(1)
		go shutdownFromSet(ctx, spread, r, &wg, &forced)
	}
	stop := context.AfterFunc(ctx, s.retireCancel)
	defer stop()
	wg.Wait()
	s.retired.Wait()
	s.retireCancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	if forced.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// AddrString writes a listener's address as configured: host:port, or
// unix:/path.
func AddrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// serveSet runs one forward's accept loop.
func serveSet(srv *Server, ln net.Listener, done chan struct{}, log *slog.Logger, name string) {
	defer close(done)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, ErrServerClosed) {
		log.Error("forward stopped accepting", "forward", name, "err", err)
	}
}

// retireFromSet drains a forward removed by Apply for at most
// drain.Timeout (less when Shutdown's deadline, the end of parent, comes
// first), then closes its open connections, spread over drain.Spread.
func retireFromSet(parent context.Context, drain Drain, r *running, log *slog.Logger, wg *sync.WaitGroup) {
	defer wg.Done()
	ctx, cancel := context.WithTimeout(parent, drain.Timeout)
	defer cancel()
	err := r.srv.ShutdownSpread(ctx, drain.Spread)
	<-r.done
	name := r.srv.gen.Load().name
	switch {
	case err != nil && parent.Err() == nil:
		log.Warn("removed forward: drain timeout reached; its open connections were closed", "forward", name, "listen", r.listen, "drain_timeout", drain.Timeout)
	case err == nil:
		log.Info("removed forward drained", "forward", name, "listen", r.listen)
	} // else Shutdown's deadline: its caller says so
}

func shutdownFromSet(ctx context.Context, spread time.Duration, r *running, wg *sync.WaitGroup, forced *atomic.Bool) {
	defer wg.Done()
	if err := r.srv.ShutdownSpread(ctx, spread); err != nil {
		forced.Store(true)
	}
	<-r.done
}

// EngineStats returns the pipe engines' Stats of each running forward, by
// its name (else its listen address), for admin.NewEngineCollector.
func (s *Set) EngineStats() map[string]pipe.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]pipe.Stats, len(s.servers))
	for _, r := range s.servers {
		cfg := r.srv.Config()
		out[cfg.name()] = r.srv.EngineStats()
	}
	return out
}

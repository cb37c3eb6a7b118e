package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
)

// The fast path: for a plain TCP forward (no TLS on either side, no SNI
// routes, no PROXY header to read, upstreams given as IP addresses) the
// engine's event loops accept the connections themselves and connect the
// upstream without blocking (pipe.Engine.Listen): no goroutine, no Go conn
// and no netpoller registration per connection. Limits, failover, back-off,
// PROXY headers sent upstream, logs and metrics behave as on the Go path
// (handleConn). Serve picks the path from the configuration it starts
// with; after a Reload that the fast path cannot serve (or that sets
// Config.GoAccept), the loops hand each new connection to handleConn as a
// Go conn.

// loopable reports whether the loops can set up g's connections alone
// (generation.loops, computed once per configuration, is false as well
// with Config.GoAccept).
func (g *generation) loopable() bool {
	if g.tls != nil || len(g.routes) > 0 || g.proxy != nil || g.fallback == nil {
		return false
	}
	for _, u := range g.fallback.upstreams {
		if u.tls != nil || !u.ap.IsValid() {
			return false
		}
	}
	return true
}

// serveOnLoops serves ln on the event loops until Shutdown or
// StopAccepting when the
// configuration and the system allow it; false (ln untouched) when not.
func (s *Server) serveOnLoops(ln net.Listener) bool {
	g := s.gen.Load()
	if !g.loops { // Config.GoAccept, or a configuration the loops cannot serve
		return false
	}
	pl, err := g.engine.Listen(ln, pipe.Acceptor{Accept: s.acceptOnLoop, Error: s.acceptPaused, Tag: g.tag()})
	if err != nil {
		return false // not Linux, not TCP: accept with Go
	}
	s.mu.Lock()
	if s.shutting || s.stopped {
		s.mu.Unlock()
		pl.Close()
		return true
	}
	s.loopListeners[pl] = struct{}{}
	s.mu.Unlock()
	select { // each closed pl first
	case <-s.ctx.Done():
	case <-s.stopAccept:
	}
	return true
}

// acceptPaused logs an accept error the loops pause for (EMFILE, say).
func (s *Server) acceptPaused(err error, retryIn time.Duration) {
	s.deps.Log.Warn("accept failed; retrying", "forward", s.gen.Load().name, "err", err, "retry_in", retryIn)
}

// acceptOnLoop sets up one connection a loop accepted (on that loop: it
// must not block).
func (s *Server) acceptOnLoop(a *pipe.Accepted) *pipe.Setup {
	g := s.gen.Load()
	if !g.loops {
		s.handOff(g, a)
		return nil
	}
	info := &connInfo{start: time.Now(), peer: a.Peer, client: a.Peer}
	g.metrics.accepted()
	release, err := g.conns.Acquire(info.client.Addr())
	if err != nil {
		s.refused(g, info, nil, refusedLimit, err)
		return nil
	}
	var prefix []byte
	if g.sendProxy != "" {
		if prefix, err = proxyHeader(g, a, info); err != nil {
			s.refused(g, info, release, refusedDial, err)
			return nil
		}
		info.proxyHeader = len(prefix)
	}
	d := &loopDial{s: s, g: g, info: info, release: release}
	return &pipe.Setup{
		Next: d.next, Connected: d.connected, AfterClose: d.closed,
		Value:       d, // found again when the pair leaves (HandOver), without a lookup by socket
		DialTimeout: g.dialTimeout, KeepAlive: g.keepAlive,
		Prefix: prefix, Options: &g.engine.Options,
		// Without a log line to write, closing is counting only.
		InlineAfterClose: !s.deps.Log.Enabled(context.Background(), slog.LevelInfo),
	}
}

// proxyHeader is the PROXY header for the upstream of a.
func proxyHeader(g *generation, a *pipe.Accepted, info *connInfo) ([]byte, error) {
	local, err := a.LocalAddr()
	if err != nil {
		return nil, err
	}
	info.local = local
	var b bytes.Buffer
	if err := listener.WriteHeader(&b, g.sendProxy, info.client, local); err != nil {
		return nil, fmt.Errorf("PROXY %s header: %w", g.sendProxy, err)
	}
	return b.Bytes(), nil
}

// handOff gives a connection the loops accepted to handleConn as a Go
// conn, for a configuration the loops cannot serve alone (after a Reload).
func (s *Server) handOff(g *generation, a *pipe.Accepted) {
	c, err := a.Conn()
	if err != nil {
		s.deps.Log.Warn("accepted connection lost", "forward", g.name, "client", addrString(a.Peer), "err", err)
		return
	}
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.pending[c] = struct{}{}
	s.wg.Add(1)
	s.settingUp++
	s.mu.Unlock()
	go s.handleConn(c)
}

// loopDial is one connection's way through its upstream candidates on the
// loop: what dialUpstream does on the Go path.
type loopDial struct {
	s       *Server
	g       *generation
	info    *connInfo
	release func()

	cands []*upstream
	i     int
	cur   *upstream
	errs  []error
	ok    bool // connected
	live  *livePair
}

func (d *loopDial) next(prev error) (netip.AddrPort, bool) {
	if prev != nil {
		d.cur.health.failed(time.Now(), d.g.backoff)
		d.g.metrics.dialError(d.cur.addr)
		d.errs = append(d.errs, fmt.Errorf("dial %s: %w", d.cur.addr, prev))
	}
	if d.cands == nil {
		d.cands = d.g.fallback.candidates(time.Now())
	}
	if d.i == len(d.cands) {
		return netip.AddrPort{}, false
	}
	d.cur = d.cands[d.i]
	d.i++
	return d.cur.ap, true
}

func (d *loopDial) connected() {
	d.cur.health.succeeded()
	d.info.upstream = d.cur.addr
	d.ok = true
	d.live = &livePair{g: d.g, info: d.info, release: d.release}
}

// closed logs and counts the connection: as piped once an upstream
// answered, else as refused.
func (d *loopDial) closed(r pipe.Result) {
	if d.ok {
		d.s.finished(d.g, d.info, d.release, r)
		return
	}
	reason, err := refusedDial, errors.Join(d.errs...)
	switch {
	case r.Reason == pipe.ReasonShutdown:
		reason, err = refusedShutdown, ErrServerClosed
	case err == nil && r.Err != nil:
		err = r.Err
	case err == nil:
		err = errors.New("client gone while connecting: " + r.Reason.String())
	}
	d.s.refused(d.g, d.info, d.release, reason, err)
}

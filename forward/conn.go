package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/internal/unread"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/pipe"
)

// Reasons a connection is closed before it is piped; the "reason" label of
// pipegate_forward_connections_refused_total and of the log line.
const (
	refusedLimit       = "limit"
	refusedProxyHeader = "proxy-header"
	refusedTLS         = "tls-handshake"
	refusedHello       = "client-hello"
	refusedNoRoute     = "no-route"
	refusedDial        = "dial"
	refusedShutdown    = "shutdown"
)

// connInfo is what the log line of one connection says.
type connInfo struct {
	start      time.Time
	peer       netip.AddrPort // the TCP peer (a load balancer with AcceptProxy)
	client     netip.AddrPort // the client, from the PROXY header if any
	local      netip.AddrPort
	serverName string
	upstream   string
	// proxyHeader is the length of the PROXY header the loops sent the
	// upstream ahead of the client's bytes (the pair's prefix): not the
	// client's, so not counted as bytes to the upstream.
	proxyHeader int
}

// handleConn sets up one accepted connection and hands it to the engine.
// It runs in its own goroutine so that a slow client never stalls accepts.
func (s *Server) handleConn(raw net.Conn) {
	defer s.wg.Done()
	defer s.setUp()
	g := s.gen.Load()
	info := &connInfo{start: time.Now(), peer: addrPort(raw.RemoteAddr()), local: addrPort(raw.LocalAddr())}
	info.client = info.peer
	g.metrics.accepted()
	keepAlive(raw, g.keepAlive)

	// The client has handshakeTimeout for its PROXY header, TLS handshake
	// or ClientHello (Shutdown closes raw to abort them); upstreams get
	// DialTimeout per attempt after that.
	deadline := info.start.Add(g.handshakeTimeout)

	var conn net.Conn = raw
	if g.proxy != nil {
		c, client, local, err := g.proxy.Handshake(raw)
		if err != nil {
			s.refuse(g, info, raw, nil, s.abortReason(refusedProxyHeader), err)
			return
		}
		conn, info.client, info.local = c, client, local
	}

	release, err := g.conns.Acquire(info.client.Addr())
	if err != nil {
		s.refuse(g, info, raw, nil, refusedLimit, err)
		return
	}

	switch {
	case g.tls != nil:
		tc := tls.Server(conn, g.tls)
		raw.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			s.refuse(g, info, raw, release, s.abortReason(refusedTLS), err)
			return
		}
		if err := raw.SetDeadline(time.Time{}); err != nil {
			s.refuse(g, info, raw, release, s.abortReason(refusedTLS), err)
			return
		}
		info.serverName = tc.ConnectionState().ServerName
		conn = tc
	case len(g.routes) > 0:
		name, peeked, err := peekServerName(conn, deadline)
		if err != nil {
			s.refuse(g, info, raw, release, s.abortReason(refusedHello), err)
			return
		}
		info.serverName = name
		conn = prepend(conn, peeked)
	}

	p := g.pick(info.serverName)
	if p == nil {
		s.refuse(g, info, raw, release, refusedNoRoute, errors.New("no route for server name "+quoteName(info.serverName)))
		return
	}
	up, u, err := dialUpstream(s.ctx, g, p, info.client, info.local)
	if err != nil {
		s.refuse(g, info, raw, release, s.abortReason(refusedDial), err)
		return
	}
	info.upstream = u.addr

	if !s.handOver(raw) {
		up.Close()
		s.refuse(g, info, raw, release, refusedShutdown, ErrServerClosed)
		return
	}
	// Filed by its client socket, should it leave the process (HandOver).
	k, keyed := connKey(raw)
	unfile := s.pairs.file(&livePair{g: g, info: info, release: release}, k, keyed)
	closed := func(r pipe.Result) {
		unfile()
		s.finished(g, info, release, r)
	}
	h, err := g.engine.Start(conn, up, closed)
	if err != nil {
		unfile()
		up.Close()
		s.refuse(g, info, raw, release, refusedShutdown, err)
		return
	}
	h.SetTag(g.tag())
}

// abortReason is reason, or refusedShutdown when Shutdown has begun: it
// closes the connections still being set up, and their handshake or dial
// fails for that reason, not the client's or the upstream's.
func (s *Server) abortReason(reason string) string {
	if s.closing() {
		return refusedShutdown
	}
	return reason
}

// handOver removes raw from the connections Shutdown would abort; false
// when Shutdown has begun (raw is then closed already).
func (s *Server) handOver(raw net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, raw)
	return !s.shutting
}

// peekServerName reads the ClientHello within the handshake deadline.
func peekServerName(c net.Conn, deadline time.Time) (string, []byte, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return "", nil, err
	}
	name, peeked, err := PeekClientHello(c)
	if err != nil {
		return "", nil, err
	}
	return name, peeked, c.SetReadDeadline(time.Time{})
}

// prepend returns c replaying b first, keeping at most one *pipe.PrefixConn
// around the raw connection so that the core can unwrap it.
func prepend(c net.Conn, b []byte) net.Conn {
	if pc, ok := c.(*pipe.PrefixConn); ok {
		rest := append(b, pc.Prefix...)
		return pipe.WithPrefix(pc.Conn, rest)
	}
	return pipe.WithPrefix(c, b)
}

func quoteName(n string) string {
	if n == "" {
		return "(none)"
	}
	return `"` + n + `"`
}

// refuse closes a connection that never reached the engine, counts and
// logs it.
func (s *Server) refuse(g *generation, info *connInfo, raw net.Conn, release func(), reason string, err error) {
	unread.Close(raw) // a FIN, not a reset, for a client that sent its request
	s.mu.Lock()
	delete(s.pending, raw)
	s.mu.Unlock()
	s.refused(g, info, release, reason, err)
}

// refused counts and logs a connection closed before it was piped.
func (s *Server) refused(g *generation, info *connInfo, release func(), reason string, err error) {
	if release != nil {
		release()
	}
	g.metrics.refused(reason)
	// WARN is for what the operator can act on (a peer without its PROXY
	// header, no route, every upstream down); a limit, a drain and a
	// client that fails its own handshake (a scanner, a client gone
	// mid-handshake: nginx logs these at info too) are INFO.
	level := slog.LevelWarn
	switch reason {
	case refusedLimit, refusedShutdown, refusedTLS, refusedHello:
		level = slog.LevelInfo
	}
	if !s.deps.Log.Enabled(context.Background(), level) {
		return
	}
	if ex, ok := errors.AsType[*limit.Exceeded](err); ok {
		reason += "-" + ex.Limit
	}
	attrs := append(info.attrs(g),
		slog.Duration("duration", time.Since(info.start)),
		slog.String("reason", reason),
		slog.String("err", err.Error()))
	s.deps.Log.LogAttrs(context.Background(), level, "connection refused", attrs...)
}

// finished runs once both connections of a pipe are closed.
func (s *Server) finished(g *generation, info *connInfo, release func(), r pipe.Result) {
	r.BytesAToB = max(r.BytesAToB-int64(info.proxyHeader), 0)
	release()
	g.metrics.closed(r)
	if !s.deps.Log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := append(info.attrs(g),
		slog.Int64("bytes_to_upstream", r.BytesAToB),
		slog.Int64("bytes_to_client", r.BytesBToA),
		slog.Duration("duration", r.End.Sub(info.start)),
		slog.String("reason", r.Reason.String()),
		slog.String("first_end", firstEnd(r.FirstEnd)))
	if r.Err != nil {
		attrs = append(attrs, slog.String("err", r.Err.Error()))
	}
	s.deps.Log.LogAttrs(context.Background(), slog.LevelInfo, "connection closed", attrs...)
}

func (info *connInfo) attrs(g *generation) []slog.Attr {
	a := make([]slog.Attr, 0, 12)
	a = append(a, slog.String("forward", g.name), slog.String("client", addrString(info.client)))
	if info.peer != info.client {
		a = append(a, slog.String("peer", addrString(info.peer)))
	}
	if info.serverName != "" {
		a = append(a, slog.String("sni", info.serverName))
	}
	if info.upstream != "" {
		a = append(a, slog.String("upstream", info.upstream))
	}
	return a
}

func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unix"
	}
	return ap.String()
}

// firstEnd names the side of a pipe that ended first.
func firstEnd(s pipe.Side) string {
	switch s {
	case pipe.SideA:
		return "client"
	case pipe.SideB:
		return "upstream"
	}
	return "none"
}

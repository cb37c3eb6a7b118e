package gateway

import (
	"bufio"
	"net"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// Handover gives the client and the logged-in backend b, with any bytes
// already read from them, to the pipe; the session has then ended and the
// protocol returns from Serve. From here on the gateway never parses
// again. The session's log line is written when the pipe ends.
func (ss *Session) Handover(b *Backend) {
	b.stop()
	ss.mu.Lock()
	ss.piped = true // from here on, Shutdown leaves the conns to the pipe
	ss.mu.Unlock()
	ss.preLoginRelease() // logged in: no longer counts as pre-login
	if ss.stopWatch != nil {
		ss.stopWatch()
	}
	clientSide := withBuffered(ss.conn, ss.br)
	backendSide := withBuffered(b.conn, b.br)
	_ = ss.conn.SetDeadline(time.Time{})
	_ = b.conn.SetDeadline(time.Time{})
	ss.End("piped")
	ss.br, ss.bw, b.br, b.bw = nil, nil, nil, nil

	entry := ss.logEntry(b.Route.Addr, b.isTLS)
	release, metrics := ss.release, ss.srv.Metrics
	lease := b.lease
	b.lease = nil
	after := func(r pipe.Result) {
		if lease != nil {
			lease.End()
		}
		release()
		metrics.sessionEnded()
		reason := r.Reason.String()
		if r.FirstEnd != pipe.SideNone {
			side := "client"
			if r.FirstEnd == pipe.SideB {
				side = "backend"
			}
			reason += " (" + side + " first)"
		}
		entry.write(r, r.Duration(), reason)
	}
	ss.srv.enter(clientSide, backendSide, after)
}

// withBuffered returns c with the bytes br read from it but did not
// consume, so that none are lost. A *pipe.PrefixConn (bytes read past a
// PROXY header) is flattened: its unread prefix comes after ours.
func withBuffered(c net.Conn, br *bufio.Reader) net.Conn {
	var buf []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n) // cannot fail: n bytes are buffered
		buf = append([]byte(nil), b...)
	}
	if pc, ok := c.(*pipe.PrefixConn); ok {
		return pipe.WithPrefix(pc.Conn, append(buf, pc.Prefix...))
	}
	return pipe.WithPrefix(c, buf)
}

// enter runs a piped session on the Engine, or on its own goroutine.
// Shutdown waits for s.piped: it is counted in here (before the session's
// pre-login count ends) and out after afterClose.
func (s *Server) enter(a, b net.Conn, afterClose func(pipe.Result)) {
	s.piped.Add(1)
	after := func(r pipe.Result) {
		defer s.piped.Done()
		afterClose(r)
	}
	if s.Engine != nil {
		if err := s.Engine.Enter(a, b, after); err != nil {
			_ = a.Close()
			_ = b.Close()
			now := time.Now()
			after(pipe.Result{Start: now, End: now, Reason: pipe.ReasonShutdown, Err: err})
		}
		return
	}
	go s.join(a, b, after)
}

// join is the goroutine of one piped session run without an Engine.
func (s *Server) join(a, b net.Conn, after func(pipe.Result)) {
	after(pipe.Join(s.baseCtx, a, b, &s.PipeOptions))
}

package gateway

import (
	"bufio"
	"context"
	"net"
	"sync"
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

	ps := &pipedSession{
		srv: ss.srv, id: ss.id, entry: ss.logEntry(b.Route.Addr, b.isTLS),
		release: ss.release, slotAddr: ss.slotAddr, lease: b.lease, pool: b.pool, poolUser: b.poolUser,
	}
	b.lease = nil
	_ = ss.srv.register(ps) // a random ID taken (2^-64): not handed over, drains here
	h := ss.srv.enter(clientSide, backendSide, ps.ended)
	ps.started(h)
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

// enter runs a piped session on the Engine, or on its own goroutine, and
// returns its handle (nil if it could not start). Shutdown waits for
// s.piped: it is counted in here (before the session's pre-login count
// ends) and out after afterClose.
func (s *Server) enter(a, b net.Conn, afterClose func(pipe.Result)) *pipe.Handle {
	s.piped.Add(1)
	if s.Engine != nil {
		after := func(r pipe.Result) {
			defer s.piped.Done()
			afterClose(r)
		}
		h, err := s.Engine.Start(a, b, after)
		if err != nil {
			_ = a.Close()
			_ = b.Close()
			now := time.Now()
			after(pipe.Result{Start: now, End: now, Reason: pipe.ReasonShutdown, Err: err})
			return nil
		}
		return h
	}
	// Without an Engine, Shutdown's give-up (baseCtx) stops the pipe.
	var (
		mu        sync.Mutex
		finished  bool
		stopWatch func() bool
	)
	after := func(r pipe.Result) {
		defer s.piped.Done()
		mu.Lock()
		finished = true
		sw := stopWatch
		mu.Unlock()
		if sw != nil {
			sw()
		}
		afterClose(r)
	}
	h := pipe.Start(a, b, &s.PipeOptions, after)
	mu.Lock()
	if !finished {
		stopWatch = context.AfterFunc(s.baseCtx, func() { h.Stop(nil) })
	}
	mu.Unlock()
	return h
}

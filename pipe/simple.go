package pipe

// PLACEHOLDER implementation: correct but naive (two io.Copy goroutines).
// The core helper replaces this file; the API in api.go stays.

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// PrefixConn is a net.Conn whose first reads return Prefix (bytes already
// read from Conn, e.g. while parsing a protocol) before reading from Conn.
type PrefixConn struct {
	net.Conn
	Prefix []byte
}

// WithPrefix returns c unchanged when prefix is empty, else a *PrefixConn.
func WithPrefix(c net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return c
	}
	return &PrefixConn{Conn: c, Prefix: prefix}
}

func (p *PrefixConn) Read(b []byte) (int, error) {
	if len(p.Prefix) > 0 {
		n := copy(b, p.Prefix)
		p.Prefix = p.Prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// Join moves bytes both ways between a and b until both directions are done
// (or ctx is cancelled), closes both and returns the result.
func Join(ctx context.Context, a, b net.Conn, opts *Options) Result {
	res := Result{Start: time.Now()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	set := func(s Side, r Reason, err error) {
		mu.Lock()
		defer mu.Unlock()
		if res.FirstEnd == SideNone {
			res.FirstEnd, res.Reason = s, r
		}
		if err != nil && res.Err == nil {
			res.Err = err
			res.Reason = r
		}
	}
	cp := func(dst, src net.Conn, s Side, n *int64) {
		defer wg.Done()
		c, err := io.Copy(dst, src)
		*n = c
		if err != nil {
			set(s, ReasonError, err)
			a.Close()
			b.Close()
			return
		}
		set(s, ReasonEOF, nil)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go cp(b, a, SideA, &res.BytesAToB)
	go cp(a, b, SideB, &res.BytesBToA)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		set(SideNone, ReasonShutdown, nil)
		a.Close()
		b.Close()
		<-done
	}
	a.Close()
	b.Close()
	res.End = time.Now()
	return res
}

// Go runs Join in the background and calls afterClose (if not nil) once both
// conns are closed.
func Go(a, b net.Conn, opts *Options, afterClose func(Result)) {
	go func() {
		r := Join(context.Background(), a, b, opts)
		if afterClose != nil {
			afterClose(r)
		}
	}()
}

// Engine owns many pipes.
type Engine struct {
	Options Options
	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	closing bool
	wg      sync.WaitGroup
}

// Enter hands a and b to the engine.
func (e *Engine) Enter(a, b net.Conn, afterClose func(Result)) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return ErrShuttingDown
	}
	if e.ctx == nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
	}
	e.wg.Add(1)
	ctx := e.ctx
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		r := Join(ctx, a, b, &e.Options)
		if afterClose != nil {
			afterClose(r)
		}
	}()
	return nil
}

// Shutdown refuses new pipes, waits for running ones, and force-closes the
// rest when ctx ends.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	if e.ctx == nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return errors.Join(ctx.Err())
	}
}

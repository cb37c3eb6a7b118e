package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// echoServer is the forwards' upstream: it sends back what it reads and,
// at the client's EOF, half-closes its own side (a half-close test sees
// every byte, then EOF).
type echoServer struct {
	plain, tls string // listening addresses
	tlsConfig  *tls.Config
	ls         []net.Listener
	mu         sync.Mutex
	conns      map[net.Conn]struct{}
	wg         sync.WaitGroup
}

func startEcho(certFile, keyFile string) (*echoServer, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("echo server: %w", err)
	}
	e := &echoServer{tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	e.plain, e.tls = "127.0.0.1:0", "127.0.0.1:0"
	if err := e.listen(); err != nil {
		return nil, err
	}
	return e, nil
}

// listen opens the listeners on e.plain and e.tls (port 0: a free one,
// written back) and starts accepting.
func (e *echoServer) listen() error {
	pl, err := net.Listen("tcp", e.plain)
	if err != nil {
		return fmt.Errorf("echo server: %w", err)
	}
	tl, err := net.Listen("tcp", e.tls)
	if err != nil {
		pl.Close()
		return fmt.Errorf("echo server: %w", err)
	}
	e.plain, e.tls = pl.Addr().String(), tl.Addr().String()
	e.mu.Lock()
	e.conns = map[net.Conn]struct{}{}
	e.mu.Unlock()
	e.ls = []net.Listener{pl, tls.NewListener(tl, e.tlsConfig)}
	for _, l := range e.ls {
		e.wg.Add(1)
		go acceptEcho(e, l)
	}
	return nil
}

// restart closes the listeners and every connection, as a crashed
// upstream does, and listens again on the same ports after down.
func (e *echoServer) restart(ctx context.Context, down time.Duration) error {
	e.close()
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	return e.listen()
}

// acceptEcho accepts until the listener is closed.
func acceptEcho(e *echoServer, l net.Listener) {
	defer e.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		if e.conns == nil { // closing
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go serveEcho(e, c)
	}
}

// halfCloser is a connection that can end its write side alone.
type halfCloser interface{ CloseWrite() error }

// serveEcho echoes one connection.
func serveEcho(e *echoServer, c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	_, err := io.Copy(c, c)
	if err == nil || errors.Is(err, io.EOF) {
		if hc, ok := c.(halfCloser); ok {
			hc.CloseWrite() // the peer reads EOF; it closes when it likes
		}
		io.Copy(io.Discard, c) // until the peer closes
	}
}

// close stops the listeners, closes every connection and waits for the
// goroutines.
func (e *echoServer) close() {
	for _, l := range e.ls {
		l.Close()
	}
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.conns = nil
	e.mu.Unlock()
	e.wg.Wait()
}

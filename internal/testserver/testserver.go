// Package testserver runs small stream servers on loopback for tests: each
// accepted connection is handled by a function on a goroutine of its own,
// under a deadline, and the server stops, waiting for those goroutines, when
// the test ends.
//
//	up := testserver.Start(t, nil, 10*time.Second, testserver.Echo)
//	c, _ := net.Dial("tcp", up)
package testserver

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Start serves handle on a new loopback TCP listener (wrapped in TLS when
// cfg is not nil) and returns its address. Each connection gets deadline
// for all its I/O and is closed when handle returns. The listener closes,
// and every handler is waited for, at t's cleanup.
func Start(t testing.TB, cfg *tls.Config, deadline time.Duration, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	Serve(t, ln, deadline, handle)
	return ln.Addr().String()
}

// Serve is Start on a listener of the caller's (a Unix socket, say), which
// it closes at t's cleanup.
func Serve(t testing.TB, ln net.Listener, deadline time.Duration, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go acceptLoop(ln, deadline, handle, &wg)
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

func acceptLoop(ln net.Listener, deadline time.Duration, handle func(net.Conn), wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go serveConn(c, deadline, handle, wg)
	}
}

func serveConn(c net.Conn, deadline time.Duration, handle func(net.Conn), wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	handle(c)
}

// Echo copies back what it reads, then half-closes.
func Echo(c net.Conn) {
	io.Copy(c, c)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Greet returns a handler that writes s and closes.
func Greet(s string) func(net.Conn) { return func(c net.Conn) { io.WriteString(c, s) } }

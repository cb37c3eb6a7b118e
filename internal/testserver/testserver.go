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
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// FullListener returns a loopback address that is listened on with a
// backlog of 0 and a full accept queue: the kernel drops further SYNs, so
// connects to it neither succeed nor fail (for dial timeouts). It is
// closed at t's cleanup.
func FullListener(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for i := 0; ; i++ { // fill the queue until a connect does not complete
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		c, err := d.Dial("tcp", ap.String())
		if err != nil {
			return ap
		}
		t.Cleanup(func() { c.Close() })
		if i > 8 {
			t.Fatal("the accept queue never filled")
		}
	}
}

package forward

import (
	"io"
	"net"
	"testing"
)

// BenchmarkShortConnection measures one connection set up through a
// forward, one byte each way, closed: the cost of the accept, dial and
// hand-over path (plus the echo server's share).
func BenchmarkShortConnection(b *testing.B) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	go benchEcho(up)
	srv, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []string{up.Addr().String()}}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go serveForTest(srv, ln, done)
	defer func() { srv.Shutdown(b.Context()); <-done }()
	addr := ln.Addr().String()
	var one [1]byte
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, one[:]); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func benchEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go echoAndClose(c)
	}
}

func echoAndClose(c net.Conn) {
	io.Copy(c, c)
	c.Close()
}

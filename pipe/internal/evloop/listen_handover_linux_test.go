package evloop

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// TestListenerCloseLosesNoWakeup: two Groups (two processes during a
// binary upgrade) accept on one listening socket. The Group that
// registered it first gets the exclusive wake-up of a connection
// (EPOLLEXCLUSIVE); when it closes its Listener right then, the
// connection must still be accepted, by it or by the other Group, and
// not wait in the accept queue for the next connection to wake someone.
func TestListenerCloseLosesNoWakeup(t *testing.T) {
	for i := range 5 {
		testListenerCloseLosesNoWakeup(t, i)
	}
}

func testListenerCloseLosesNoWakeup(t *testing.T, round int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	lnB, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	got := make(chan string, 16)
	acc := func(name string) Acceptor {
		return Acceptor{Accept: func(a Accepted) *core.Setup {
			unix.Close(a.FD)
			got <- name
			return nil
		}}
	}
	gA, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer gA.Close()
	gB, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer gB.Close()
	lA, err := gA.Listen(ln, acc("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer lA.Close()
	// A is registered (and first in the socket's wait queue): it alone
	// accepts this one.
	c0, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	if who := <-got; who != "A" {
		t.Fatalf("first connection accepted by %s", who)
	}
	lB, err := gB.Listen(lnB, acc("B"))
	if err != nil {
		t.Fatal(err)
	}
	defer lB.Close()
	for _, g := range []*Group{gA, gB} { // both loops past addListener
		done := make(chan struct{})
		g.loops[0].post(func(*loop) { close(done) })
		<-done
	}
	// A's Close has begun (its first step), and a connection comes.
	lA.closed.Store(true)
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	lA.Close()
	select {
	case who := <-got:
		t.Logf("round %d: accepted by %s", round, who)
	case <-time.After(5 * time.Second):
		t.Fatalf("round %d: a connection queued while the first Group closed its Listener was accepted by neither Group", round)
	}
}

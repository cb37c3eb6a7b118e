package pipe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
)

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEngineShortConns is one short connection after another through
// a forwarder, as `bench/forward.sh`'s connrate sees it with one client:
// the client connects, the forwarder accepts, dials the echo backend and
// joins the two, the client sends one byte, reads it back and closes, and
// the next connection starts once the forwarder's afterClose has run. So
// the Engine never has more than one pair: this measures what a pair
// costs from start to end, loops started and stopped included if the
// Engine does that. cpu-µs/op is the whole process's CPU (client, echo
// server and kernel included) per connection: steadier than ns/op on a
// shared machine.
func BenchmarkEngineShortConns(b *testing.B) {
	for _, c := range []struct {
		name string
		join func(e *Engine, a, up net.Conn, done chan<- struct{})
		f    Flavour
	}{
		{"auto", engineJoin, FlavourAuto},
		{"goroutines", engineJoin, FlavourGoroutines},
		{"naive", naiveJoin, FlavourAuto},
	} {
		b.Run(c.name, func(b *testing.B) {
			front, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer front.Close()
			back := testserver.Start(b, nil, time.Minute, testserver.Echo)
			e := &Engine{Flavour: c.f}
			defer e.Shutdown(context.Background())
			done := make(chan struct{}, 1)
			var one [1]byte
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				cl, err := net.Dial("tcp", front.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				a, err := front.Accept()
				if err != nil {
					b.Fatal(err)
				}
				up, err := net.Dial("tcp", back)
				if err != nil {
					b.Fatal(err)
				}
				c.join(e, a, up, done)
				if _, err := cl.Write([]byte{'x'}); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(cl, one[:]); err != nil {
					b.Fatal(err)
				}
				cl.Close()
				<-done
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func engineJoin(e *Engine, a, up net.Conn, done chan<- struct{}) {
	if err := e.Enter(a, up, func(Result) { done <- struct{}{} }); err != nil {
		panic(err)
	}
}

// naiveJoin is the naive forwarder: two io.Copy goroutines, then close.
func naiveJoin(_ *Engine, a, up net.Conn, done chan<- struct{}) {
	go naiveShort(a, up, done)
}

func naiveShort(a, up net.Conn, done chan<- struct{}) {
	both := make(chan struct{}, 2)
	naiveGo(a, up, both)
	<-both
	<-both
	a.Close()
	up.Close()
	done <- struct{}{}
}

// BenchmarkEngineListenShortConns is BenchmarkEngineShortConns through
// Engine.Listen, the path a plain TCP forwarder takes (bench/forward.sh's
// connrate against HAProxy): the loops accept the client and connect the
// echo backend themselves. "mptcp" listens as net.Listen does by default
// (an MPTCP socket, which refuses SO_OOBINLINE), "tcp" on a plain TCP
// socket (which takes it, and its accepted sockets inherit it).
func BenchmarkEngineListenShortConns(b *testing.B) {
	for _, mptcp := range []bool{true, false} {
		name := "tcp"
		if mptcp {
			name = "mptcp"
		}
		b.Run(name, func(b *testing.B) {
			up := netip.MustParseAddrPort(testserver.Start(b, nil, time.Minute, testserver.Echo))
			var lc net.ListenConfig
			lc.SetMultipathTCP(mptcp)
			tl, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			e := &Engine{}
			defer e.Shutdown(context.Background())
			done := make(chan struct{}, 1)
			setup := Setup{
				Next:       func(prev error) (netip.AddrPort, bool) { return up, prev == nil },
				AfterClose: func(Result) { done <- struct{}{} },
			}
			ln, err := e.Listen(tl, Acceptor{Accept: func(*Accepted) *Setup { return &setup }})
			if err != nil {
				b.Fatal(err)
			}
			addr := ln.Addr().String()
			var one [1]byte
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				cl, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cl.Write([]byte{'x'}); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(cl, one[:]); err != nil {
					b.Fatal(err)
				}
				cl.Close()
				<-done
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

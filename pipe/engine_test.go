package pipe

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// spinUntil polls cond without sleeping, within a bound: for states that a
// goroutine reaches just after the event the test can observe.
func spinUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

// TestEngine: counts, graceful Shutdown waiting for pipes and their
// callbacks, then refusing Enter.
func TestEngine(t *testing.T) {
	forEngineModes(t, testEngine)
}

func testEngine(t *testing.T, f Flavour) {
	e := Engine{Flavour: f}
	const n = 3
	peers := make([][2]net.Conn, n)
	var calls atomic.Int32
	for i := range peers {
		a, ap := side(t, kTCP)
		b, bp := side(t, []kind{kTLS, kTCP, kPrefix}[i])
		peers[i] = [2]net.Conn{ap, bp}
		if err := e.Enter(a, b, func(Result) { calls.Add(1) }); err != nil {
			t.Fatalf("Enter: %v", err)
		}
	}
	write(t, peers[0][0], "12345")
	readN(t, peers[0][1], 5)
	write(t, peers[1][1], "abc")
	readN(t, peers[1][0], 3)
	readN(t, peers[2][0], len(prefixGreeting))
	const wantBA = int64(3 + len(prefixGreeting))
	// Counters are added right after each write returns: the peer may see
	// the bytes a moment before.
	spinUntil(t, "byte counters catch up", func() bool { s := e.Stats(); return s.BytesAToB == 5 && s.BytesBToA == wantBA })
	if s := e.Stats(); s.Open != n || s.Total != n || s.BytesAToB != 5 || s.BytesBToA != wantBA {
		t.Fatalf("stats %+v", s)
	}
	done := make(chan error, 1)
	go shutdownInto(&e, context.Background(), done)
	spinUntil(t, "shutdown begins", e.ShuttingDown)
	a, _ := side(t, kTCP)
	b, _ := side(t, kTCP)
	if err := e.Enter(a, b, nil); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Enter during shutdown: %v, want ErrShuttingDown", err)
	}
	for _, p := range peers {
		closeWrite(t, p[0])
		closeWrite(t, p[1])
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c := calls.Load(); c != n {
		t.Fatalf("%d callbacks ran before Shutdown returned, want %d", c, n)
	}
	if s := e.Stats(); s.Open != 0 || s.Total != n || s.BytesAToB != 5 || s.BytesBToA != wantBA {
		t.Fatalf("stats after shutdown %+v", s)
	}
}

func shutdownInto(e *Engine, ctx context.Context, done chan<- error) { done <- e.Shutdown(ctx) }

// TestEngineForcedShutdown: at the context's deadline the remaining pipes
// are stopped with ReasonShutdown, each callback runs once, before
// Shutdown returns.
func TestEngineForcedShutdown(t *testing.T) {
	forEngineModes(t, testEngineForcedShutdown)
}

func testEngineForcedShutdown(t *testing.T, f Flavour) {
	e := &Engine{Options: Options{HalfCloseLinger: -1}, Flavour: f}
	kinds := [][2]kind{{kTCP, kTCP}, {kTLS, kUnix}, {kNetPipe, kTCP}, {kTLS, kTLS}, {kUnix, kPrefix}}
	var mu sync.Mutex
	got := map[int][]Result{}
	for i, k := range kinds {
		a, ap := side(t, k[0])
		b, _ := side(t, k[1])
		if i == 0 {
			closeWrite(t, ap) // half-closed and lingering forever
		}
		if err := e.Enter(a, b, func(r Result) { mu.Lock(); got[i] = append(got[i], r); mu.Unlock() }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range kinds {
		if len(got[i]) != 1 || got[i][0].Reason != ReasonShutdown {
			t.Fatalf("pipe %d results %+v, want one shutdown", i, got[i])
		}
	}
	if got[0][0].FirstEnd != SideA {
		t.Fatalf("half-closed pipe FirstEnd %s, want a", got[0][0].FirstEnd)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestEngineConcurrentEnter: Enter from many goroutines at once.
func TestEngineConcurrentEnter(t *testing.T) {
	forEngineModes(t, testEngineConcurrentEnter)
}

func testEngineConcurrentEnter(t *testing.T, f Flavour) {
	e := Engine{Flavour: f}
	const workers, each = 8, 10
	conns := make(chan [2]net.Conn, workers*each)
	for i := range workers * each {
		a, _ := side(t, kTCP)
		b, _ := side(t, []kind{kUnix, kTLS}[i%2])
		conns <- [2]net.Conn{a, b}
	}
	close(conns)
	var wg sync.WaitGroup
	var ended atomic.Int32
	for range workers {
		wg.Go(func() {
			for c := range conns {
				if err := e.Enter(c[0], c[1], func(Result) { ended.Add(1) }); err != nil {
					t.Errorf("Enter: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if s := e.Stats(); s.Total != workers*each {
		t.Fatalf("Total %d", s.Total)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.Shutdown(ctx)
	if ended.Load() != workers*each || e.Stats().Open != 0 {
		t.Fatalf("ended %d, open %d", ended.Load(), e.Stats().Open)
	}
}

// TestIdleHoldsNothing: after traffic, a waiting pipe holds no pooled buffer
// and no kernel pipe, for every kind with a socket to wait on.
//
// On the event loops a loop keeps up to loopCfg.MaxIdlePipes kernel pipes
// for reuse (here one, with one loop); an idle pair holds none.
func TestIdleHoldsNothing(t *testing.T) {
	forEngineModes(t, testIdleHoldsNothing)
}

func testIdleHoldsNothing(t *testing.T, f Flavour) {
	_, pipesBefore := openFDs(t)
	e := &Engine{Flavour: f, Loops: 1}
	e.loopCfg.MaxIdlePipes = 1
	t.Cleanup(func() { shutdownNow(e) })
	pooled := 0
	if f == FlavourAuto && runtime.GOOS == "linux" {
		pooled = 2 // one kernel pipe: two descriptors
	}
	for _, pr := range [][2]kind{{kTCP, kTCP}, {kUnix, kTCP}, {kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}, {kPrefix, kUnix}} {
		a, ap := side(t, pr[0])
		b, bp := side(t, pr[1])
		if err := e.Enter(a, b, nil); err != nil {
			t.Fatal(err)
		}
		big := string(make([]byte, 256<<10))
		go writeAll(ap, big)
		skip := 0
		if pr[0].hasPrefix() {
			skip = len(prefixGreeting)
		}
		readN(t, bp, skip+len(big))
		go writeAll(bp, big)
		readN(t, ap, len(big))
	}
	e.mu.Lock()
	var dirs []*direction
	for p := range e.pipes {
		dirs = append(dirs, &p.ab, &p.ba)
	}
	e.mu.Unlock()
	for _, d := range dirs {
		spinUntil(t, "idle directions hold nothing", func() bool { return d.held.Load() == 0 })
	}
	// A loop gives a kernel pipe back when its next read finds nothing.
	spinUntil(t, "idle pairs hold no kernel pipe", func() bool { _, pipes := openFDs(t); return pipes <= pipesBefore+pooled })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.Shutdown(ctx)
}

// TestNoFDLeak: every path closes every fd it opened.
func TestNoFDLeak(t *testing.T) {
	forEngineModes(t, testNoFDLeak)
}

// testNoFDLeak also checks that no goroutine outlives the Engine.
func testNoFDLeak(t *testing.T, f Flavour) {
	side(t, kTCP) // the poller's own fds exist before counting
	before, _ := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	t.Run("work", func(t *testing.T) {
		e := Engine{Flavour: f}
		for _, pr := range pairs {
			a, ap := side(t, pr[0])
			b, bp := side(t, pr[1])
			if err := e.Enter(a, b, nil); err != nil {
				t.Fatal(err)
			}
			write(t, ap, "data")
			readN(t, bp, 4+len(prefixIf(pr[0])))
		}
		fl := flavour{"engine", engineFlavour(f)}
		h := startOn(t, fl, kTCP, kTLS, nil)
		write(t, h.aPeer, "x")
		reset(t, h.aPeer)
		h.wait(t)
		h = startOn(t, fl, kTCP, kTCP, nil)
		write(t, h.aPeer, "x")
		reset(t, h.aPeer)
		h.wait(t)
		h = startOn(t, fl, kUnix, kTLS, nil)
		closeWrite(t, h.aPeer)
		closeWrite(t, h.bPeer)
		h.wait(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stop the rest at once
		if err := e.Shutdown(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown: %v", err)
		}
	})
	if after, _ := openFDs(t); after != before {
		t.Fatalf("%d fds open after, %d before", after, before)
	}
	goleak.VerifyNone(t, ignore)
}

func prefixIf(k kind) string {
	if k.hasPrefix() {
		return prefixGreeting
	}
	return ""
}

func writeAll(c net.Conn, s string) { _, _ = c.Write([]byte(s)) }

// TestEngineFlavourChoice: FlavourAuto puts plain socket pairs (a peeked
// prefix included) and TLS 1.3 pairs on the event loops on Linux and the
// rest on goroutines;
// FlavourGoroutines puts all on goroutines. When their last pair ends the
// loops hold no goroutine (the Group is kept for its linger), and Shutdown
// retires them.
func TestEngineFlavourChoice(t *testing.T) {
	kinds := [][2]kind{{kTCP, kTCP}, {kUnix, kPrefix}, {kTLS, kTCP}, {kNetPipe, kTCP}}
	for _, f := range engineModes {
		t.Run(f.String(), func(t *testing.T) {
			e := &Engine{Flavour: f, loopLinger: time.Hour}
			ended := make(chan Result, len(kinds))
			var peers []net.Conn
			for _, k := range kinds {
				a, ap := side(t, k[0])
				b, bp := side(t, k[1])
				peers = append(peers, ap, bp)
				if err := e.Enter(a, b, func(r Result) { ended <- r }); err != nil {
					t.Fatal(err)
				}
			}
			wantLoops := 0
			if f == FlavourAuto && runtime.GOOS == "linux" {
				wantLoops = 3
				if !tlsrec.Supported {
					wantLoops = 2 // the TLS pair falls back (tls-go-release)
				}
			}
			e.mu.Lock()
			onLoops, onGoroutines, running := e.onLoops, len(e.pipes), e.group != nil
			e.mu.Unlock()
			if onLoops != wantLoops || onGoroutines != len(kinds)-wantLoops || running != (wantLoops > 0) {
				t.Fatalf("%d pairs on loops (running %v), %d on goroutines; want %d on loops", onLoops, running, onGoroutines, wantLoops)
			}
			for _, c := range peers {
				c.Close()
			}
			for range kinds {
				<-ended
			}
			e.mu.Lock()
			g := e.group
			e.mu.Unlock()
			if (g != nil) != (wantLoops > 0) {
				t.Fatalf("loops kept: %v, want %v (linger)", g != nil, wantLoops > 0)
			}
			if g != nil {
				spinUntil(t, "no loop goroutine runs without pairs", func() bool { return g.Running() == 0 })
			}
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			e.mu.Lock()
			running = e.group != nil
			e.mu.Unlock()
			if running {
				t.Fatalf("loops not retired by Shutdown")
			}
		})
	}
}

// TestTLSMovesOn: a direction that did TLS work and then waited hands its
// wait to a fresh goroutine (burst.go); bytes keep flowing both ways
// afterwards, half-close still works, and a forced Shutdown still stops a
// pair whose directions moved on.
func TestTLSMovesOn(t *testing.T) {
	for _, pr := range [][2]kind{{kTLS, kTCP}, {kTCP, kTLS}, {kTLS, kTLS}} {
		for _, end := range []string{"eof", "shutdown"} {
			t.Run(pairName(pr)+"-"+end, func(t *testing.T) {
				e := &Engine{moveAfter: time.Millisecond, TLSOnGoroutines: true}
				a, ap := side(t, pr[0])
				b, bp := side(t, pr[1])
				res := make(chan Result, 1)
				if err := e.Enter(a, b, func(r Result) { res <- r }); err != nil {
					t.Fatal(err)
				}
				e.mu.Lock()
				var p *pipe
				for q := range e.pipes {
					p = q
				}
				e.mu.Unlock()
				for round := range 3 {
					write(t, ap, "ping")
					readN(t, bp, 4)
					write(t, bp, "pong")
					readN(t, ap, 4)
					spinUntil(t, "both directions move on", func() bool {
						return p.ab.moves.Load() > int32(round) && p.ba.moves.Load() > int32(round)
					})
				}
				if end == "shutdown" {
					if err := shutdownNow(e); !errors.Is(err, context.Canceled) {
						t.Fatalf("Shutdown: %v", err)
					}
					if r := <-res; r.Reason != ReasonShutdown {
						t.Fatalf("result %+v, want shutdown", r)
					}
					return
				}
				closeWrite(t, ap)
				readToEnd(bp)
				write(t, bp, "late")
				readN(t, ap, 4)
				closeWrite(t, bp)
				readToEnd(ap)
				r := <-res
				if r.Reason != ReasonEOF || r.BytesAToB != 12 || r.BytesBToA != 16 {
					t.Fatalf("result %+v, want eof, 12 and 16 bytes", r)
				}
				if err := e.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

package pipe

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// TestEngineLoopsLinger: with FlavourAuto, the event loops are kept while
// they have no pair, with no goroutine running, and a pair entered within
// the linger reuses them; after the linger they are retired without
// Shutdown: every descriptor they held is closed and no goroutine is left.
func TestEngineLoopsLinger(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux-only")
	}
	side(t, kTCP) // the poller's own fds exist before counting
	before, _ := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	e := &Engine{Loops: 2, loopLinger: time.Hour}
	group := func() *evloop.Group {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.group
	}
	var first *evloop.Group
	for i := range 3 {
		a, ap := side(t, kTCP)
		b, bp := side(t, kTCP)
		res := make(chan Result, 1)
		if err := e.Enter(a, b, func(r Result) { res <- r }); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = group()
		} else if g := group(); g != first {
			t.Fatalf("pair %d: new loops %p, want the lingering %p", i, g, first)
		}
		write(t, ap, "ping")
		readN(t, bp, 4)
		closeWrite(t, ap)
		closeWrite(t, bp)
		if r := <-res; r.Reason != ReasonEOF || r.BytesAToB != 4 {
			t.Fatalf("pair %d: %+v", i, r)
		}
		ap.Close()
		bp.Close()
		e.mu.Lock()
		g := e.group
		e.mu.Unlock()
		if g == nil {
			t.Fatalf("pair %d: loops retired before their linger", i)
		}
		spinUntil(t, "no loop goroutine runs without pairs", func() bool { return g.Running() == 0 })
	}
	// A pair is counted out once its afterClose has returned, which
	// may be after the result was received.
	spinUntil(t, "the pairs counted out", func() bool { return e.Stats().Open == 0 })
	if s := e.Stats(); s.Total != 3 || s.BytesAToB != 12 {
		t.Fatalf("stats %+v", s)
	}
	// A short linger now: the next empty Group is retired by its timer.
	e.mu.Lock()
	e.loopLinger = time.Millisecond
	e.mu.Unlock()
	a, ap := side(t, kTCP)
	b, bp := side(t, kTCP)
	res := make(chan Result, 1)
	if err := e.Enter(a, b, func(r Result) { res <- r }); err != nil {
		t.Fatal(err)
	}
	ap.Close()
	bp.Close()
	<-res
	spinUntil(t, "the loops retire after their linger", func() bool { return group() == nil })
	e.retiring.Wait()
	if s := e.Stats(); s.Open != 0 || s.Total != 4 || s.BytesAToB != 12 {
		t.Fatalf("stats after retiring %+v", s)
	}
	// More would be a leak; fewer is an earlier test's file closed by the
	// garbage collector meanwhile (the count is the process's).
	if after, _ := openFDs(t); after > before {
		t.Fatalf("%d fds open after the linger, %d before", after, before)
	}
	goleak.VerifyNone(t, ignore)
}

package pipe

import (
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkDetachAdopt moves PIPE_BENCH_PAIRS (default 9000) idle plain
// pairs from one Engine to another and back with DetachAll and Adopt, as
// an upgrade does (without the Unix socket between the processes). Each
// pair's two sides are the ends of one socketpair, so that 9000 pairs fit
// in 18000 descriptors; idle, it is what a quiet session is to the loops.
// Reported: pairs moved per second, the longest stall (a pair off the
// loops: from its batch's detach to its adoption), and the heap of a pair
// started natively and of an adopted one.
func BenchmarkDetachAdopt(b *testing.B) {
	n := 9000
	if v, err := strconv.Atoi(os.Getenv("PIPE_BENCH_PAIRS")); err == nil && v > 0 {
		n = v
	}
	var batchStart time.Time
	var maxStall time.Duration
	engines := [2]*Engine{{}, {}}
	for _, e := range engines {
		e.batchHook = func() { batchStart = time.Now() }
		defer shutdownNow(e)
	}
	heap0 := heapNow()
	for range n {
		a, bb := idleSelfPair(b)
		if _, err := engines[0].Start(a, bb, nil); err != nil {
			b.Fatal(err)
		}
	}
	native := float64(heapNow()-heap0) / float64(n)
	move := func(from, to *Engine) {
		left, err := from.DetachAll(context.Background(), func(d *Detached) error {
			_, err := to.Adopt(d, nil)
			maxStall = max(maxStall, time.Since(batchStart))
			return err
		})
		if left != 0 || err != nil {
			b.Fatalf("DetachAll: %d left, %v", left, err)
		}
	}
	var adopted float64
	b.ResetTimer()
	for i := range b.N {
		move(engines[i%2], engines[1-i%2])
		if i == 0 {
			b.StopTimer()
			adopted = float64(heapNow()-heap0) / float64(n)
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric(float64(maxStall.Microseconds())/1000, "max-stall-ms")
	b.ReportMetric(native, "native-B/pair")
	b.ReportMetric(adopted, "adopted-B/pair")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/move")
}

// idleSelfPair returns the two ends of a Unix stream socketpair as conns.
func idleSelfPair(b *testing.B) (net.Conn, net.Conn) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	return cs[0], cs[1]
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

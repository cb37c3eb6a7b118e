package drain

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/pipe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// started returns n running pipes over net.Pipe and a channel that gets
// each one's Result.
func started(t *testing.T, n int) ([]*pipe.Handle, <-chan pipe.Result) {
	t.Helper()
	results := make(chan pipe.Result, n)
	hs := make([]*pipe.Handle, n)
	for i := range hs {
		a, peerA := net.Pipe()
		b, peerB := net.Pipe()
		t.Cleanup(func() { peerA.Close(); peerB.Close() })
		hs[i] = pipe.Start(a, b, nil, func(r pipe.Result) { results <- r })
	}
	t.Cleanup(func() {
		for _, h := range hs {
			h.Stop(nil)
			<-h.Done()
		}
	})
	return hs, results
}

// With a deadline, every pipe open at the window's start is stopped
// before the deadline: the second a third of the window after the first,
// far from it.
func TestRunStopsAll(t *testing.T) {
	hs, results := started(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var told int
	sp := Spread{Window: time.Hour, Open: func() []*pipe.Handle { return hs }, Started: func(n int, _ time.Duration) { told = n }}
	if n := sp.Run(ctx, nil); n != 2 || told != 2 {
		t.Fatalf("Run stopped %d (told %d), want 2", n, told)
	}
	for range hs {
		if r := <-results; r.Reason != pipe.ReasonStopped {
			t.Errorf("reason %v, want stopped", r.Reason)
		}
	}
}

// Without a deadline, with no window, or once done is closed, Run stops
// nothing.
func TestRunStopsNothing(t *testing.T) {
	hs, _ := started(t, 1)
	open := func() []*pipe.Handle { return hs }
	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	closed := make(chan struct{})
	close(closed)
	for _, tt := range []struct {
		name string
		ctx  context.Context
		sp   Spread
		done <-chan struct{}
	}{
		{"no deadline", context.Background(), Spread{Window: time.Hour, Open: open}, nil},
		{"no window", withDeadline, Spread{Open: open}, nil},
		{"done", withDeadline, Spread{Window: time.Second, Open: open}, closed},
	} {
		if n := tt.sp.Run(tt.ctx, tt.done); n != 0 {
			t.Errorf("%s: stopped %d, want 0", tt.name, n)
		}
	}
	select {
	case <-hs[0].Done():
		t.Error("the pipe ended")
	default:
	}
}

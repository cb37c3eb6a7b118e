package upgradetest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Timeout bounds each step of these helpers.
const Timeout = 10 * time.Second

// EndLog is a log handler that counts the lines of sessions (or pairs)
// that ended, those with a bytes_to_client attribute, so that a test can
// wait for them; the rest is dropped, after Watch (if set) has seen it.
type EndLog struct {
	Watch   func(slog.Record) // called with every record, under no lock of EndLog's
	mu      sync.Mutex
	ends    int
	changed chan struct{} // closed and renewed at each end
}

// Ends is how many ends were logged so far.
func (l *EndLog) Ends() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ends
}

// WaitEnds waits until n ends were logged, failing t after Timeout.
func (l *EndLog) WaitEnds(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(Timeout)
	for {
		l.mu.Lock()
		ends, changed := l.ends, l.changedLocked()
		l.mu.Unlock()
		if ends >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d ends logged within %v, want %d", ends, Timeout, n)
		}
	}
}

func (l *EndLog) changedLocked() chan struct{} {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

func (l *EndLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *EndLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *EndLog) WithGroup(string) slog.Handler            { return l }

func (l *EndLog) Handle(_ context.Context, r slog.Record) error {
	if l.Watch != nil {
		l.Watch(r)
	}
	ended := false
	r.Attrs(func(a slog.Attr) bool {
		ended = a.Key == "bytes_to_client"
		return !ended
	})
	if ended {
		l.mu.Lock()
		l.ends++
		close(l.changedLocked())
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	return nil
}

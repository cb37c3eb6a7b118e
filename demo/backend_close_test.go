package demo

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestBackendsCloseRightAfterStart: a backend closed before its serving
// goroutine got to Serve (a Start that fails at once, on a busy address)
// still stops: go-smtp's Close closes only the listeners Serve has
// registered, and Serve then accepted for ever (TestFallback hung).
func TestBackendsCloseRightAfterStart(t *testing.T) {
	h := &host{name: "backend 1", boxes: map[string]*mailbox{}}
	for range 20 { // the goroutine starts late often, not always
		sb, err := startSubmissionBackend(h, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		mb, err := startMemBackend(h, silentLogger())
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() {
			sb.close()
			mb.close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("a backend closed right after its start never stopped")
		}
	}
}

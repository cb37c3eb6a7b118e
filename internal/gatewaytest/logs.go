package gatewaytest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Logs is a gateway's log output in a test: what it is given goes to
// t.Log and is kept, for the test to wait for a line (Wait).
//
//	logs := gatewaytest.NewLogs(t)
//	srv.Logger = slog.New(slog.NewTextHandler(logs, nil))
//	...
//	logs.Wait(t, "certificate signed by unknown authority")
type Logs struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLogs returns Logs passing what it is given to t.Log.
func NewLogs(t testing.TB) *Logs { return &Logs{t: t} }

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// String is everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Wait polls (at most 10 s) until something logged contains s, else
// fails the test.
func (l *Logs) Wait(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if strings.Contains(l.String(), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q", s)
		}
		time.Sleep(delay) // polling with a deadline, not synchronisation by time
	}
}

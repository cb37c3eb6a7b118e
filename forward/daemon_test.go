package forward

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func daemonConfig(names ...string) *DaemonConfig {
	cfg := &DaemonConfig{DrainTimeout: time.Second}
	for _, n := range names {
		cfg.Forwards = append(cfg.Forwards, Config{Name: n, Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1"}})
	}
	return cfg
}

// A Reload before Run changes what Run starts; a reload of the metrics
// address or the log settings is refused with a warning and the rest
// applied; Run drains when its context ends and returns nil.
func TestDaemonReloadBeforeRun(t *testing.T) {
	var logs lockedBuffer
	d, err := NewDaemon(daemonConfig("a"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	next := daemonConfig("b")
	next.MetricsAddr = "127.0.0.1:1"
	if err := d.Reload(next); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "change at restart only; kept") {
		t.Errorf("no warning about metrics_addr:\n%s", logs.String())
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("test over"))
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	log := logs.String()
	for _, w := range []string{`msg="forward listening" forward=b`, `draining cause="test over"`, "stopped"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
	if strings.Contains(log, "forward=a") || strings.Contains(log, "metrics listening") {
		t.Errorf("forward a or the metrics endpoint started:\n%s", log)
	}
}

// A listener that cannot be opened is Run's error, and nothing runs.
func TestDaemonStartFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := daemonConfig("free")
	cfg.Forwards = append(cfg.Forwards, Config{Name: "busy", Listen: busy.Addr().String(), Upstreams: []string{"127.0.0.1:1"}})
	var logs lockedBuffer
	d, err := NewDaemon(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err == nil {
		t.Fatal("Run: no error")
	}
	if !strings.Contains(logs.String(), "start failed") || len(d.Listening()) != 0 {
		t.Errorf("listening %v; log:\n%s", d.Listening(), logs.String())
	}
}

package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/pipe"
)

// TestSetHandOver: a piped pair leaves one Set (a binary upgrade's old
// process) and goes on in another: the old forward counts it out of its
// limits and gauge without a log line, the new one counts it in and logs
// it once, at its end, with the bytes of both.
func TestSetHandOver(t *testing.T) {
	for _, goAccept := range []bool{false, true} {
		name := "loops"
		if goAccept {
			name = "go"
		}
		t.Run(name, func(t *testing.T) { testSetHandOver(t, goAccept) })
	}
}

// handOverSet is a Set of one forward "web" for TestSetHandOver.
type handOverSet struct {
	set *Set
	rec *logRecorder
	m   *Metrics
}

func startHandOverSet(t *testing.T, up string, goAccept bool) *handOverSet {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := &handOverSet{rec: newLogRecorder(), m: m}
	h.set = NewSet(Deps{Log: slog.New(h.rec), Metrics: m})
	cfg := Config{Name: "web", Listen: "127.0.0.1:0", Upstreams: []string{up}, MaxConnsPerIP: 1, GoAccept: goAccept}
	if err := h.set.Apply([]Config{cfg}, Drain{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := h.set.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

// open is the forward's open connections: its limit's count and its gauge.
func (h *handOverSet) open(t *testing.T) (int, float64) {
	t.Helper()
	h.set.mu.Lock()
	srv := h.set.servers["name web"].srv
	h.set.mu.Unlock()
	return srv.gen.Load().conns.Open(), metricValue(t, h.m.open.WithLabelValues("web"))
}

func echoed(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("echo %q, %v; want %q", b, err, msg)
	}
}

func testSetHandOver(t *testing.T, goAccept bool) {
	up := startUpstream(t, nil, testserver.Echo)
	old := startHandOverSet(t, up, goAccept)
	nw := startHandOverSet(t, up, goAccept)
	c := dial(t, listening(old.set)["web"])
	c.SetDeadline(time.Now().Add(testTimeout))
	echoed(t, c, "before")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := old.set.StopAccepting(ctx); err != nil {
		t.Fatal(err)
	}
	var got PairState
	sent, stayed, err := old.set.HandOver(ctx, func(p *pipe.Detached, st PairState) error {
		if p.Tag != "127.0.0.1:0" {
			t.Errorf("tag %q, want the listen address as configured", p.Tag)
		}
		got = st
		return nw.set.Adopt(p, st)
	})
	if err != nil || sent != 1 || stayed != 0 {
		t.Fatalf("HandOver: %d sent, %d stayed, %v", sent, stayed, err)
	}
	if got.Forward != "127.0.0.1:0" || got.Client.String() != c.LocalAddr().String() || got.Local.String() != c.RemoteAddr().String() || got.Upstream != up || got.Start.IsZero() {
		t.Errorf("pair state %+v", got)
	}
	if n, g := old.open(t); n != 0 || g != 0 {
		t.Errorf("old forward after the hand-over: %d counted in its limits, gauge %v; want 0", n, g)
	}
	if n, g := nw.open(t); n != 1 || g != 1 {
		t.Errorf("new forward after the hand-over: %d counted in its limits, gauge %v; want 1", n, g)
	}

	echoed(t, c, "after")
	c.Close()
	r := nw.rec.wait(t, "connection closed", 1)
	if r["forward"] != "web" || r["client"] != c.LocalAddr().String() || r["upstream"] != up || r["bytes_to_upstream"] != "11" || r["bytes_to_client"] != "11" {
		t.Errorf("log line of the moved pair: %v", r)
	}
	if n, g := nw.open(t); n != 0 || g != 0 {
		t.Errorf("new forward after the pair closed: %d counted, gauge %v", n, g)
	}
	old.rec.mu.Lock()
	for _, r := range old.rec.recs {
		if r["msg"] == "connection closed" {
			t.Errorf("the old forward logged the pair that left: %v", r)
		}
	}
	old.rec.mu.Unlock()

	// A pair of a forward the new process does not have is closed.
	if err := nw.set.Adopt(&pipe.Detached{}, PairState{Forward: "127.0.0.1:1"}); !errors.Is(err, ErrNoForward) {
		t.Errorf("Adopt for no forward: %v, want ErrNoForward", err)
	}
}

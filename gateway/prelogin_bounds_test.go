package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// logRecorder is a slog.Handler keeping the session lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []map[string]any
	got   chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{got: make(chan struct{}, 64)} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorderWith{r: r, attrs: as}
}
func (r *logRecorder) WithGroup(string) slog.Handler { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	return r.handle(rec, nil)
}

func (r *logRecorder) handle(rec slog.Record, pre []slog.Attr) error {
	if !strings.HasSuffix(rec.Message, " session") {
		return nil
	}
	m := map[string]any{"msg": rec.Message}
	for _, a := range pre {
		m[a.Key] = a.Value.Any()
	}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	r.lines = append(r.lines, m)
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *logRecorder) wait(t *testing.T, d time.Duration) map[string]any {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(d):
		t.Fatalf("no session line within %v", d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines[len(r.lines)-1]
}

type logRecorderWith struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (w *logRecorderWith) Enabled(context.Context, slog.Level) bool { return true }
func (w *logRecorderWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorderWith{r: w.r, attrs: append(append([]slog.Attr(nil), w.attrs...), as...)}
}
func (w *logRecorderWith) WithGroup(string) slog.Handler { return w }
func (w *logRecorderWith) Handle(_ context.Context, rec slog.Record) error {
	return w.r.handle(rec, w.attrs)
}

// bigTalker is a protocol whose pre-login dialogue writes more than a
// client that never reads can take (think of 30 pipelined commands with
// long answers): each chunk is flushed, as the protocols flush each
// answer.
type bigTalker struct{}

func (bigTalker) Name() string                                { return "toy" }
func (bigTalker) Refuse(s *gateway.Session, e *gateway.Error) {}
func (bigTalker) Serve(s *gateway.Session) {
	chunk := strings.Repeat("x", 64<<10)
	for i := 0; i < 1024; i++ { // 64 MiB at most
		s.Writer().WriteString(chunk)
		if err := s.Flush(); err != nil {
			s.End("client write: " + err.Error())
			return
		}
	}
	s.End("wrote all")
}

// TestPreLoginWriteBoundedByLoginTimeout: login_timeout is "from
// connect to a successful login" (docs/imap.md), an absolute bound on the
// pre-login dialogue. A client that never reads does not hold a pre-login
// session (its pre-login slot, its goroutine and buffers) much past it:
// writes end a short grace after the login deadline, not 30 s after the
// last Flush.
func TestPreLoginWriteBoundedByLoginTimeout(t *testing.T) {
	rec := newLogRecorder()
	srv := &gateway.Server{
		Protocol: bigTalker{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{}, route.ErrNotFound
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		LoginTimeout:       300 * time.Millisecond,
		Logger:             slog.New(rec),
	}
	addr := serveTest(t, srv)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client never reads. The session must end about 300 ms after
	// connect; 10 s is the failure detector, far below the 30 s write timeout.
	line := rec.wait(t, 10*time.Second)
	t.Logf("session ended: %v", line["reason"])
}

// TestPipedSessionDurationFromConnect: a session's log line says its
// duration. A session that never logged in counts from connect
// (time.Since(start)); a piped one counts only from the hand-over to the
// pipe (Result.Duration), leaving out its whole pre-login dialogue (here a
// failed login held 400 ms by auth_failure_delay). pipegate forward's
// duration "counts from accept" (docs/forward.md).
func TestPipedSessionDurationFromConnect(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	rec := newLogRecorder()
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       400 * time.Millisecond,
		Logger:             slog.New(rec),
	}
	c, br := greeted(t, serveTest(t, srv), 20*time.Second)
	start := time.Now()
	if got := exchange(t, c, br, "LOGIN alice@a.test wrong"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("wrong password: %q", got)
	}
	pipedToy(t, c, br)
	preLogin := time.Since(start)
	c.Close()
	line := rec.wait(t, 20*time.Second)
	d, _ := line["duration"].(time.Duration)
	if d < 400*time.Millisecond {
		t.Errorf("piped session logged duration=%v, but it was connected for more than %v (reason %v)", d, preLogin, line["reason"])
	}
}

// TestLoginPastTimeoutCounted: every login attempt is counted in
// pipegate_<protocol>_logins_total{backend,result}. A login whose route
// lookup outlasted login_timeout is answered unavailable (no backend
// tried), but counted nowhere.
func TestLoginPastTimeoutCounted(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	reg := prometheus.NewRegistry()
	const timeout = 200 * time.Millisecond
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(ctx context.Context, _ route.Request) (route.Route, error) {
			// A slow route source: it answers after the login timeout.
			select {
			case <-time.After(2 * timeout):
			case <-ctx.Done():
			}
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		LoginTimeout:       timeout,
		Metrics:            gateway.NewMetrics(reg, "toy"),
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c, br := greeted(t, serveTest(t, srv), 20*time.Second)
	if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "-ERR "+gateway.TextUnavailable {
		t.Fatalf("login past the timeout: %q", got)
	}
	if n := metricSum(t, reg, "pipegate_toy_logins_total"); n != 1 {
		t.Errorf("pipegate_toy_logins_total = %v after one login answered unavailable, want 1", n)
	}
}

func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestNewMetricsTwice: a second NewMetrics of a protocol on the same
// registry does not panic (as MustRegister did): both count in the same
// series.
func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1 := gateway.NewMetrics(reg, "toy")
	m2 := gateway.NewMetrics(reg, "toy")
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	for _, m := range []*gateway.Metrics{m1, m2} {
		srv := &gateway.Server{
			Protocol: toy{},
			Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{be}}, nil
			}),
			AllowPlaintextAuth: true,
			Metrics:            m,
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		c, br := greeted(t, serveTest(t, srv), 20*time.Second)
		pipedToy(t, c, br)
	}
	if n := metricSum(t, reg, "pipegate_toy_logins_total"); n != 2 {
		t.Errorf("pipegate_toy_logins_total = %v after a login through each of two Metrics, want 2", n)
	}
}

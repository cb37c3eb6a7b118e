package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pipegate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var draining atomic.Bool
	h := Handler(reg, func() error {
		if draining.Load() {
			return errors.New("draining")
		}
		return nil
	})
	tests := []struct {
		name     string
		drain    bool
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{"metrics", false, "GET", "/metrics", 200, "pipegate_test_total 3"},
		{"healthy", false, "GET", "/healthz", 200, "ok\n"},
		{"draining", true, "GET", "/healthz", 503, "draining\n"},
		{"HEAD healthz", false, "HEAD", "/healthz", 200, ""},
		{"unknown path", false, "GET", "/", 404, ""},
		{"POST refused", false, "POST", "/healthz", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			draining.Store(tt.drain)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("%d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
	rec := httptest.NewRecorder()
	Handler(nil, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("nil healthy: %d", rec.Code)
	}
}

func TestStartShutdown(t *testing.T) {
	srv, err := Start("127.0.0.1:0", Handler(prometheus.NewRegistry(), nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Fatal("still serving after Shutdown")
	}
	// A taken address is an error naming it.
	a, err := Start("127.0.0.1:0", Handler(nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if _, err := Start(a.Addr(), Handler(nil, nil), nil); err == nil || !strings.Contains(err.Error(), a.Addr()) {
		t.Fatalf("second Start on %s: %v", a.Addr(), err)
	}
}

// Package admin serves the metrics and health endpoint of pipegate's
// daemons: GET /metrics (Prometheus text format) and GET /healthz (200
// "ok", or 503 with the reason, for load balancer health checks and for
// draining an instance before a deploy).
//
// Usage:
//
//	reg := prometheus.NewRegistry()
//	var draining atomic.Bool
//	h := admin.Handler(reg, func() error {
//		if draining.Load() {
//			return errors.New("draining")
//		}
//		return nil
//	})
//	srv, err := admin.Start("127.0.0.1:9100", h, log)
//	if err != nil {
//		return err
//	}
//	defer srv.Shutdown(ctx)
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics from g and /healthz from healthy (nil: always
// healthy). Other paths are 404.
func Handler(g prometheus.Gatherer, healthy func() error) http.Handler {
	mux := http.NewServeMux()
	if g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if healthy != nil {
			if err := healthy(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// WriteJSON answers code with v as JSON, as the admin address's APIs
// answer (the affinity and session APIs): indented, never cached.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Server is a running admin endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	done chan struct{} // closed when serve returns
}

// Start listens on addr (host:port; port 0 picks one, see Addr) and serves
// h in the background. Errors from serving are logged to log (nil:
// slog.Default()).
func Start(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: listen on %s: %w", addr, err)
	}
	return Serve(ln, h, log), nil
}

// Serve serves h on ln in the background, as Start does on the listener
// it opens: for a listener opened elsewhere (handed over by the process a
// binary upgrade replaces). Shutdown closes ln.
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		log:  log,
		done: make(chan struct{}),
	}
	go s.serve()
	return s
}

func (s *Server) serve() {
	defer close(s.done)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("admin endpoint stopped", "addr", s.Addr(), "err", err)
	}
}

// Addr returns the address listened on, with the port chosen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("admin endpoint %s: shutdown: %w", s.Addr(), err)
	}
	return nil
}

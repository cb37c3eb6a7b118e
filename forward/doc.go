// Package forward is pipegate's TCP/TLS port forwarder: it accepts
// connections on one address and pipes each to one of several upstreams,
// with optional TLS termination, TLS origination, PROXY protocol on either
// side, SNI routing without terminating TLS, connection limits, timeouts,
// one log line per connection and Prometheus metrics.
//
// Usage:
//
//	srv, err := forward.New(forward.Config{
//		Name:        "web",
//		Listen:      "127.0.0.1:8080",          // or "unix:/run/web.sock"
//		Upstreams:   []string{"10.0.0.1:80", "10.0.0.2:80"},
//		Balance:     forward.RoundRobin,
//		DialTimeout: 3 * time.Second,
//		IdleTimeout: 5 * time.Minute,
//	}, forward.Deps{Log: slog.Default(), Metrics: metrics})
//	if err != nil {
//		return err // names the field at fault
//	}
//	go srv.ListenAndServe()
//	// on SIGHUP: err = srv.Reload(newConfig) — new connections use it, old ones
//	// are kept; on error the running config stays
//	// on SIGTERM: srv.Shutdown(ctx) — stop accepting, drain, force-close at ctx's end
//
// A daemon with several forwards runs them in a Set, whose Apply starts,
// reloads in place and retires forwards to match a new list on SIGHUP.
// `pipegate forward` is a Daemon: LoadFile reads and checks a config file
// (docs/forward.md) into a DaemonConfig; d, err := NewDaemon(cfg, log), then d.Run(ctx), runs
// its Set with metrics, /healthz and the drain, and Reload applies a new
// DaemonConfig.
//
// Each accepted connection goes through, in order: the PROXY header (when
// Config.AcceptProxy, and only from Config.TrustedProxies), the connection
// limits, the TLS handshake (Config.TLS) or a peek at the ClientHello (when
// Config.Routes is set and TLS is not terminated), the choice and dial of an
// upstream (PROXY header sent first when Config.SendProxy, then TLS when
// Config.UpstreamTLS), and finally the hand-over of both connections to a
// pipe.Engine. Bytes read while peeking are replayed to the upstream
// untouched through pipe.WithPrefix, so the core can still splice.
package forward

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
)

const imapUsage = `usage: pipegate imap --config FILE

Runs the IMAP reverse proxy described by FILE (see docs/imap.md).
SIGHUP reloads routes and certificates; SIGTERM or SIGINT drains and exits.
`

// runIMAP is `pipegate imap`: exit code 0 after a clean drain, 1 on a
// runtime failure, 2 on bad usage or config.
func runIMAP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate imap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, imapUsage) }
	configPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, imapUsage)
		return 2
	}
	s, err := loadIMAPConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate imap: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, s.LogFormat, s.LogLevel)
	if err != nil { // checked by loadIMAPConfig already
		fmt.Fprintf(stderr, "pipegate imap: %s: log: %v\n", s.File, err)
		return 2
	}
	res, err := openIMAPResources(s)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate imap: %v\n", err)
		return 2
	}
	defer res.close()
	d := newIMAPDaemon(s, res, log)
	return d.run(ctx)
}

// checkIMAPConfig validates an imap config file and the files it names
// (certificates load, routes parse) for `pipegate check-config`.
func checkIMAPConfig(path string) error {
	s, err := loadIMAPConfig(path)
	if err != nil {
		return err
	}
	res, err := openIMAPResources(s)
	if err != nil {
		return err
	}
	return res.close()
}

// imapDaemon is a running `pipegate imap`.
type imapDaemon struct {
	settings *imapSettings
	res      *imapResources
	log      *slog.Logger
	registry *prometheus.Registry
	servers  []*imap.Server // one per listener: each may have its own PROXY policy
	engine   *pipe.Engine   // made here, shared by the servers, shut down here
	draining atomic.Bool
}

func newIMAPDaemon(s *imapSettings, res *imapResources, log *slog.Logger) *imapDaemon {
	d := &imapDaemon{settings: s, res: res, log: log, registry: prometheus.NewRegistry()}
	metrics := imap.NewMetrics(d.registry)
	var conns *limit.Conns
	if s.MaxConnections > 0 || s.MaxConnectionsPerIP > 0 {
		conns = limit.NewConns(s.MaxConnections, s.MaxConnectionsPerIP)
	}
	penalty := &limit.Penalty{} // Dovecot-like defaults
	if p := s.Penalty; p != nil {
		penalty = &limit.Penalty{Base: p.Base, Max: p.Max, Forget: p.Forget}
	}
	if res.penalty != nil {
		penalty.Store = res.penalty
		penalty.OnError = func(err error) { log.Warn("imap: auth_penalty store", "err", err) }
	}
	pipeOpts := pipe.Options{IdleTimeout: s.IdleTimeout, MaxLifetime: s.MaxLifetime, HalfCloseLinger: s.HalfCloseLinger}
	engine := &pipe.Engine{Options: pipeOpts, TLSOnGoroutines: s.TLSOnGoroutines}
	d.engine = engine
	d.registry.MustRegister(admin.NewEngineCollector(func() map[string]pipe.Stats {
		return map[string]pipe.Stats{"imap": engine.Stats()}
	}))
	for _, l := range s.Listen {
		var policy *listener.ProxyPolicy
		if l.AcceptProxy {
			policy = &listener.ProxyPolicy{Trusted: l.Trusted, Required: true}
		}
		d.servers = append(d.servers, &imap.Server{
			Server: gateway.Server{
				Router:             res.router,
				TLSConfig:          res.clientTLS(),
				BackendTLS:         res.backendTLS,
				AllowPlaintextAuth: s.AllowPlaintextAuth,
				OAuth:              s.OAuth,
				LoginTimeout:       s.LoginTimeout,
				MaxLoginFailures:   s.MaxLoginFailures,
				Accounts:           s.Accounts,
				FailureDelay:       orNone(s.AuthFailureDelay),
				MaxPreLoginPerIP:   orNone(s.MaxPreLoginPerIP),
				Conns:              conns,
				Penalty:            penalty,
				Proxy:              policy,
				Engine:             engine,
				PipeOptions:        pipeOpts,
				DialTimeout:        s.DialTimeout,
				BackendTimeout:     s.BackendTimeout,
				Logger:             log,
				Metrics:            metrics,
				Hostname:           s.Hostname,
			},
			IMAP4rev2: s.IMAP4rev2,
			Greeting:  s.Greeting,
		})
	}
	return d
}

// imapServeResult is what a listener's Serve returned.
type imapServeResult struct {
	addr string
	err  error
}

func (d *imapDaemon) run(ctx context.Context) int {
	s := d.settings
	listeners := make([]net.Listener, 0, len(s.Listen))
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for i, lc := range s.Listen {
		l, err := net.Listen("tcp", lc.Addr)
		if err != nil {
			closeAll()
			d.log.Error("imap: listen", "field", fmt.Sprintf("listen[%d].addr", i), "addr", lc.Addr, "err", err)
			return 1
		}
		listeners = append(listeners, l)
	}
	var admSrv *admin.Server
	if s.MetricsAddr != "" {
		var err error
		admSrv, err = admin.Start(s.MetricsAddr, admin.Handler(d.registry, d.healthy), d.log)
		if err != nil {
			closeAll()
			d.log.Error("imap: metrics_addr", "addr", s.MetricsAddr, "err", err)
			return 1
		}
		d.log.Info("imap: metrics listening", "addr", admSrv.Addr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	served := make(chan imapServeResult, len(listeners))
	var wg sync.WaitGroup
	for i, l := range listeners {
		wg.Add(1)
		go serveIMAPListener(&wg, d.servers[i], l, s.Listen[i].TLS, served)
		d.log.Info("imap: listening", "addr", l.Addr().String(), "tls", s.Listen[i].TLS, "accept_proxy", s.Listen[i].AcceptProxy, "tls_on_goroutines", s.TLSOnGoroutines, "max_prelogin_connections_per_ip", s.MaxPreLoginPerIP, "auth_failure_delay", s.AuthFailureDelay.String())
	}

	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("imap: draining", "timeout", s.DrainTimeout.String())
			break loop
		case <-hup:
			d.reload()
		case r := <-served:
			d.log.Error("imap: listener failed", "addr", r.addr, "err", r.err)
			code = 1
			break loop
		}
	}
	if err := d.shutdown(); err != nil {
		d.log.Warn("imap: drain incomplete, connections closed", "err", err)
	}
	wg.Wait()
	if admSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
		admSrv.Shutdown(sctx)
		cancel()
	}
	d.log.Info("imap: stopped")
	return code
}

// serveIMAPListener is the goroutine serving one listener.
func serveIMAPListener(wg *sync.WaitGroup, srv *imap.Server, l net.Listener, implicitTLS bool, served chan<- imapServeResult) {
	defer wg.Done()
	err := srv.Serve(l, implicitTLS)
	if !errors.Is(err, imap.ErrServerClosed) {
		served <- imapServeResult{addr: l.Addr().String(), err: err}
	}
}

// shutdown drains every server at once, within drain_timeout.
func (d *imapDaemon) shutdown() error {
	d.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), d.settings.DrainTimeout)
	defer cancel()
	errs := make([]error, len(d.servers))
	var wg sync.WaitGroup
	for i, srv := range d.servers {
		wg.Add(1)
		go shutdownIMAPServer(&wg, ctx, srv, &errs[i])
	}
	wg.Wait()
	// The servers never shut down the Engine they were handed: its maker
	// does, after them (at once when everything has drained).
	errs = append(errs, d.engine.Shutdown(ctx))
	return errors.Join(errs...)
}

// shutdownIMAPServer is the goroutine draining one server.
func shutdownIMAPServer(wg *sync.WaitGroup, ctx context.Context, srv *imap.Server, err *error) {
	defer wg.Done()
	*err = srv.Shutdown(ctx)
}

// reload re-reads routes and certificates (SIGHUP).
func (d *imapDaemon) reload() {
	d.log.Info("imap: reloading (SIGHUP)")
	backendTLS, err := d.res.reload(d.log)
	if err != nil {
		d.log.Error("imap: reload failed, keeping the previous state of what failed", "config", d.settings.File, "err", err)
	}
	d.setTLS(d.res.clientTLS(), backendTLS)
}

func (d *imapDaemon) setTLS(client, backend *tls.Config) {
	for _, srv := range d.servers {
		srv.SetTLSConfig(client, backend)
	}
}

func (d *imapDaemon) healthy() error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// orNone turns a config value where 0 means "none" into a Server field
// where 0 means the default and a negative value none.
func orNone[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

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
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
)

const mailUsage = `usage: pipegate mail --config FILE

Runs the mail gateway described by FILE (see docs/mail.md): each listener
serves one protocol (imap, pop3, sieve, submission).
SIGHUP reloads routes and certificates; SIGTERM or SIGINT drains and exits.
`

const imapUsage = `usage: pipegate imap --config FILE

Runs the IMAP reverse proxy described by FILE (see docs/imap.md): the mail
gateway with IMAP listeners only (pipegate mail serves the other protocols).
SIGHUP reloads routes and certificates; SIGTERM or SIGINT drains and exits.
`

// runMail is `pipegate mail`: exit code 0 after a clean drain, 1 on a
// runtime failure, 2 on bad usage or config.
func runMail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMailCommand(ctx, cmdMail, mailUsage, args, stderr)
}

// runIMAP is `pipegate imap`: `pipegate mail` with IMAP listeners only.
func runIMAP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMailCommand(ctx, cmdIMAP, imapUsage, args, stderr)
}

func runMailCommand(ctx context.Context, command, usage string, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	s, err := loadMailConfig(*configPath, command)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return 2
	}
	log, err := newLogger(stderr, s.LogFormat, s.LogLevel)
	if err != nil { // checked by loadMailConfig already
		fmt.Fprintf(stderr, "pipegate %s: %s: log: %v\n", command, s.File, err)
		return 2
	}
	res, err := openMailResources(s)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return 2
	}
	defer res.close()
	d := newMailDaemon(s, res, log)
	return d.run(ctx)
}

// checkMailConfig validates a mail (or imap) config file and the files it
// names (certificates load, routes parse) for `pipegate check-config`.
func checkMailConfig(path string) error {
	_, err := checkMailConfigKind(path)
	return err
}

// checkMailConfigKind is checkMailConfig, and says which command runs the
// file: "imap" when every listener is IMAP's (both do), else "mail".
func checkMailConfigKind(path string) (string, error) {
	s, err := loadMailConfig(path, cmdMail)
	if err != nil {
		return "", err
	}
	res, err := openMailResources(s)
	if err != nil {
		return "", err
	}
	kind := cmdIMAP
	for _, l := range s.Listen {
		if l.Protocol != cmdIMAP {
			kind = cmdMail
		}
	}
	return kind, res.close()
}

// mailDaemon is a running `pipegate mail` (or `pipegate imap`).
type mailDaemon struct {
	settings *mailSettings
	res      *mailResources
	log      *slog.Logger
	prefix   string // "mail: " or "imap: ", before each log message
	registry *prometheus.Registry
	servers  []mailServer // one per listener: each has its protocol, and may have its own PROXY policy
	engine   *pipe.Engine // made here, shared by the servers, shut down here
	draining atomic.Bool
}

func newMailDaemon(s *mailSettings, res *mailResources, log *slog.Logger) *mailDaemon {
	d := &mailDaemon{settings: s, res: res, log: log, prefix: s.Command + ": ", registry: prometheus.NewRegistry()}
	var conns *limit.Conns // shared by every protocol: the limits are per client address
	if s.MaxConnections > 0 || s.MaxConnectionsPerIP > 0 {
		conns = limit.NewConns(s.MaxConnections, s.MaxConnectionsPerIP)
	}
	penalty := &limit.Penalty{} // Dovecot-like defaults; shared by every protocol
	if p := s.Penalty; p != nil {
		penalty = &limit.Penalty{Base: p.Base, Max: p.Max, Forget: p.Forget}
	}
	if res.penalty != nil {
		penalty.Store = res.penalty
		penalty.OnError = func(err error) { log.Warn(d.prefix+"auth_penalty store", "err", err) }
	}
	pipeOpts := pipe.Options{IdleTimeout: s.IdleTimeout, MaxLifetime: s.MaxLifetime, HalfCloseLinger: s.HalfCloseLinger}
	engine := &pipe.Engine{Options: pipeOpts, TLSOnGoroutines: s.TLSOnGoroutines}
	d.engine = engine
	d.registry.MustRegister(admin.NewEngineCollector(func() map[string]pipe.Stats {
		return map[string]pipe.Stats{s.Command: engine.Stats()}
	}))
	metrics := map[string]*gateway.Metrics{} // per protocol, shared by its listeners
	for _, l := range s.Listen {
		p := mailProtocols[l.Protocol] // checked by loadMailConfig
		if metrics[l.Protocol] == nil {
			metrics[l.Protocol] = p.newMetrics(d.registry)
		}
		var policy *listener.ProxyPolicy
		if l.AcceptProxy {
			policy = &listener.ProxyPolicy{Trusted: l.Trusted, Required: true}
		}
		srv, g := p.newServer(s)
		g.Router = res.router
		g.TLSConfig = res.clientTLS()
		g.BackendTLS = res.backendTLS
		g.AllowPlaintextAuth = s.AllowPlaintextAuth
		g.OAuth = s.OAuth
		g.LoginTimeout = s.LoginTimeout
		g.MaxLoginFailures = s.MaxLoginFailures
		g.Accounts = s.Accounts
		g.FailureDelay = orNone(s.AuthFailureDelay)
		g.MaxPreLoginPerIP = orNone(s.MaxPreLoginPerIP)
		g.Conns = conns
		g.Penalty = penalty
		g.Proxy = policy
		g.Engine = engine
		g.PipeOptions = pipeOpts
		g.DialTimeout = s.DialTimeout
		g.BackendTimeout = s.BackendTimeout
		g.Logger = log
		g.Metrics = metrics[l.Protocol]
		g.Hostname = s.Hostname
		d.servers = append(d.servers, srv)
	}
	return d
}

// mailServeResult is what a listener's Serve returned.
type mailServeResult struct {
	addr string
	err  error
}

func (d *mailDaemon) run(ctx context.Context) int {
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
			d.log.Error(d.prefix+"listen", "field", fmt.Sprintf("listen[%d].addr", i), "addr", lc.Addr, "err", err)
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
			d.log.Error(d.prefix+"metrics_addr", "addr", s.MetricsAddr, "err", err)
			return 1
		}
		d.log.Info(d.prefix+"metrics listening", "addr", admSrv.Addr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	served := make(chan mailServeResult, len(listeners))
	var wg sync.WaitGroup
	for i, l := range listeners {
		wg.Add(1)
		go serveMailListener(&wg, d.servers[i], l, s.Listen[i].TLS, served)
		d.log.Info(d.prefix+"listening", "addr", l.Addr().String(), "protocol", s.Listen[i].Protocol, "tls", s.Listen[i].TLS, "accept_proxy", s.Listen[i].AcceptProxy, "tls_on_goroutines", s.TLSOnGoroutines, "max_prelogin_connections_per_ip", s.MaxPreLoginPerIP, "auth_failure_delay", s.AuthFailureDelay.String())
	}

	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info(d.prefix+"draining", "timeout", s.DrainTimeout.String())
			break loop
		case <-hup:
			d.reload()
		case r := <-served:
			d.log.Error(d.prefix+"listener failed", "addr", r.addr, "err", r.err)
			code = 1
			break loop
		}
	}
	if err := d.shutdown(); err != nil {
		d.log.Warn(d.prefix+"drain incomplete, connections closed", "err", err)
	}
	wg.Wait()
	if admSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), s.DrainTimeout)
		admSrv.Shutdown(sctx)
		cancel()
	}
	d.log.Info(d.prefix + "stopped")
	return code
}

// serveMailListener is the goroutine serving one listener.
func serveMailListener(wg *sync.WaitGroup, srv mailServer, l net.Listener, implicitTLS bool, served chan<- mailServeResult) {
	defer wg.Done()
	err := srv.Serve(l, implicitTLS)
	if !errors.Is(err, gateway.ErrServerClosed) {
		served <- mailServeResult{addr: l.Addr().String(), err: err}
	}
}

// shutdown drains every server at once, within drain_timeout.
func (d *mailDaemon) shutdown() error {
	d.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), d.settings.DrainTimeout)
	defer cancel()
	errs := make([]error, len(d.servers))
	var wg sync.WaitGroup
	for i, srv := range d.servers {
		wg.Add(1)
		go shutdownMailServer(&wg, ctx, srv, &errs[i])
	}
	wg.Wait()
	// The servers never shut down the Engine they were handed: its maker
	// does, after them (at once when everything has drained).
	errs = append(errs, d.engine.Shutdown(ctx))
	return errors.Join(errs...)
}

// shutdownMailServer is the goroutine draining one server.
func shutdownMailServer(wg *sync.WaitGroup, ctx context.Context, srv mailServer, err *error) {
	defer wg.Done()
	*err = srv.Shutdown(ctx)
}

// reload re-reads routes and certificates (SIGHUP).
func (d *mailDaemon) reload() {
	d.log.Info(d.prefix + "reloading (SIGHUP)")
	backendTLS, err := d.res.reload(d.log)
	if err != nil {
		d.log.Error(d.prefix+"reload failed, keeping the previous state of what failed", "config", d.settings.File, "err", err)
	}
	d.setTLS(d.res.clientTLS(), backendTLS)
}

func (d *mailDaemon) setTLS(client, backend *tls.Config) {
	for _, srv := range d.servers {
		srv.SetTLSConfig(client, backend)
	}
}

func (d *mailDaemon) healthy() error {
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

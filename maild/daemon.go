package maild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/pipe"
)

// Daemon is a mail gateway made from checked Settings: a server per
// listener, sharing one pipe.Engine, the connection limits, the penalty,
// the routes and the certificates.
type Daemon struct {
	settings *Settings
	res      *resources
	log      *slog.Logger
	prefix   string // "mail: " or "imap: ", before each log message
	registry *prometheus.Registry
	servers  []Server     // one per listener: each has its protocol, and may have its own PROXY policy
	engine   *pipe.Engine // made here, shared by the servers, shut down here
	pools    *pools       // nil without pools:
	draining atomic.Bool
	reloadMu sync.Mutex // one Reload at a time; guards probers
	probers  []Server   // the pools' health checks' (newProber): reloaded as the servers

	// Listen, if not nil, opens the listeners (addr as listen[].addr) and
	// ListenMetrics the metrics_addr's, instead of net.Listen: a process
	// taking over from another (a binary upgrade) serves on the sockets
	// handed over. OnServing, if not nil, is called once Run serves every
	// listener and the metrics endpoint and every pool has joined (or
	// poolJoinWait passed). TakingOver says that this process takes
	// sessions over from an old one: it then fails (and the old one keeps
	// its sessions) when its pools cannot join within poolJoinWait, where a
	// fresh start warns and serves. Set them before Run.
	Listen        func(addr string) (net.Listener, error)
	ListenMetrics func(addr string) (net.Listener, error)
	OnServing     func()
	TakingOver    bool

	joinWait time.Duration // tests: poolJoinWait when 0
}

// poolJoinWait bounds Run's wait for the pools' first heartbeat.
const poolJoinWait = 10 * time.Second

// listenTCP opens addr with listen when set, else net.Listen.
func listenTCP(listen func(string) (net.Listener, error), addr string) (net.Listener, error) {
	if listen != nil {
		return listen(addr)
	}
	return net.Listen("tcp", addr)
}

// New loads what s names (certificates, routes, the penalty store) and
// makes a server per listener; nothing listens before Run. Errors are
// config errors: "FILE:LINE: FIELD: problem". Close releases what New
// opened.
func New(s *Settings, log *slog.Logger) (*Daemon, error) {
	res, err := openResources(s)
	if err != nil {
		return nil, err
	}
	d := &Daemon{settings: s, res: res, log: log, prefix: s.Command + ": ", registry: prometheus.NewRegistry()}
	// The runtime's and the process's own metrics (go_goroutines,
	// process_open_fds, ...), as `pipegate forward` serves them.
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	res.logCertificates(log)
	if len(s.Pools) > 0 {
		d.pools, err = newPools(s.Pools, loginHold(*s), log, d.prefix)
		if err != nil {
			res.close()
			return nil, err
		}
		for _, st := range d.pools.stores() {
			d.registry.MustRegister(st.Collector())
		}
	}
	var preLogin *limit.Conns // shared by every protocol, as conns
	if s.MaxPreLoginPerIP > 0 {
		preLogin = limit.NewConns(0, s.MaxPreLoginPerIP)
	}
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
		p := s.protocols[l.Protocol] // checked by Load
		if metrics[l.Protocol] == nil {
			metrics[l.Protocol] = p.NewMetrics(d.registry)
		}
		var policy *listener.ProxyPolicy
		if l.AcceptProxy {
			policy = &listener.ProxyPolicy{Trusted: l.Trusted, Required: true}
		}
		srv, g := p.NewServer(s)
		g.Router = res.router
		if d.pools != nil {
			g.Pools = d.pools
		}
		g.TLSConfig = res.clientTLS()
		g.BackendTLS = res.backendTLS
		g.AllowPlaintextAuth = s.AllowPlaintextAuth
		g.OAuth = s.OAuth
		g.LoginTimeout = s.LoginTimeout
		g.MaxLoginFailures = s.MaxLoginFailures
		g.Accounts = s.Accounts
		g.FailureDelay = orNone(s.AuthFailureDelay)
		g.MaxPreLoginPerIP = orNone(s.MaxPreLoginPerIP)
		g.PreLoginConns = preLogin
		g.Conns = conns
		g.Penalty = penalty
		g.Proxy = policy
		g.Engine = engine
		g.PipeOptions = pipeOpts
		g.DrainSpread = s.DrainSpread
		g.DialTimeout = s.DialTimeout
		g.BackendTimeout = s.BackendTimeout
		g.Logger = log
		g.Metrics = metrics[l.Protocol]
		g.Hostname = s.Hostname
		d.servers = append(d.servers, srv)
	}
	return d, nil
}

// serveResult is what a listener's Serve returned.
type serveResult struct {
	addr string
	err  error
}

// Run opens every listener and the metrics endpoint, serves until ctx
// ends or a listener fails, then drains every server within drain_timeout.
// It logs what goes wrong; it returns an error when a listener could not
// be opened (then nothing was served) or failed. Call it once.
func (d *Daemon) Run(ctx context.Context) error {
	s := d.settings
	listeners := make([]net.Listener, 0, len(s.Listen))
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for i, lc := range s.Listen {
		l, err := listenTCP(d.Listen, lc.Addr)
		if err != nil {
			closeAll()
			field := fmt.Sprintf("listen[%d].addr", i)
			d.log.Error(d.prefix+"listen", "field", field, "addr", lc.Addr, "err", err)
			return fmt.Errorf("%s: %w", field, err)
		}
		listeners = append(listeners, l)
	}
	var admSrv *admin.Server
	if s.MetricsAddr != "" {
		ln, err := listenTCP(d.ListenMetrics, s.MetricsAddr)
		if err == nil {
			admSrv = admin.Serve(ln, d.adminHandler(), d.log)
		}
		if err != nil {
			closeAll()
			d.log.Error(d.prefix+"metrics_addr", "addr", s.MetricsAddr, "err", err)
			return fmt.Errorf("metrics_addr: %w", err)
		}
		d.log.Info(d.prefix+"metrics listening", "addr", admSrv.Addr())
	}

	// The pools' instance stays joined until every session has ended:
	// their ends and kicks go through it.
	poolCtx, stopPools := context.WithCancel(context.Background())
	var poolWG sync.WaitGroup
	if d.pools != nil {
		d.pools.run(poolCtx, &poolWG, d.newProber)
	}
	defer poolWG.Wait()
	defer stopPools()
	// Serving (and, in a binary upgrade, taking sessions over) waits for
	// the pools' first heartbeat: before it, a login or an adopted
	// session's lease would be refused.
	if d.pools != nil {
		wait := cmp.Or(d.joinWait, poolJoinWait)
		if late := d.pools.waitJoined(ctx, wait); len(late) > 0 {
			if d.TakingOver { // the old process keeps its sessions (rollback)
				closeAll()
				if admSrv != nil {
					admSrv.Shutdown(context.Background())
				}
				return fmt.Errorf("pools %v: not joined within %v (Redis unreachable?): not taking sessions over", late, wait)
			}
			d.log.Warn(d.prefix+"pools not joined yet: their logins are refused until they are", "pools", late, "waited", wait.String())
		}
	}

	served := make(chan serveResult, len(listeners))
	var wg sync.WaitGroup
	for i, l := range listeners {
		wg.Add(1)
		go serveListener(&wg, d.servers[i], l, s.Listen[i].TLS, served)
		d.log.Info(d.prefix+"listening", "addr", l.Addr().String(), "protocol", s.Listen[i].Protocol, "tls", s.Listen[i].TLS, "accept_proxy", s.Listen[i].AcceptProxy, "tls_on_goroutines", s.TLSOnGoroutines, "max_prelogin_connections_per_ip", s.MaxPreLoginPerIP, "auth_failure_delay", s.AuthFailureDelay.String())
	}
	if d.OnServing != nil {
		d.OnServing()
	}

	var failed error
	select {
	case <-ctx.Done():
		d.log.Info(d.prefix+"draining", "timeout", s.DrainTimeout.String())
	case r := <-served:
		d.log.Error(d.prefix+"listener failed", "addr", r.addr, "err", r.err)
		failed = fmt.Errorf("listener %s: %w", r.addr, r.err)
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
	return failed
}

// serveListener is the goroutine serving one listener.
func serveListener(wg *sync.WaitGroup, srv Server, l net.Listener, implicitTLS bool, served chan<- serveResult) {
	defer wg.Done()
	err := srv.Serve(l, implicitTLS)
	if !errors.Is(err, gateway.ErrServerClosed) {
		served <- serveResult{addr: l.Addr().String(), err: err}
	}
}

// shutdown drains every server at once, within drain_timeout.
func (d *Daemon) shutdown() error {
	d.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), d.settings.DrainTimeout)
	defer cancel()
	errs := make([]error, len(d.servers))
	var wg sync.WaitGroup
	for i, srv := range d.servers {
		wg.Add(1)
		go shutdownServer(&wg, ctx, srv, &errs[i])
	}
	wg.Wait()
	// The servers never shut down the Engine they were handed: its maker
	// does, after them (at once when everything has drained).
	errs = append(errs, d.engine.Shutdown(ctx))
	return errors.Join(errs...)
}

// shutdownServer is the goroutine draining one server.
func shutdownServer(wg *sync.WaitGroup, ctx context.Context, srv Server, err *error) {
	defer wg.Done()
	*err = srv.Shutdown(ctx)
}

// Reload re-reads the routes and the certificates for new sessions
// (SIGHUP); open sessions keep theirs. What fails to load keeps its
// previous state, and the errors, naming the config file's lines, are
// returned together. It is safe to call while Run runs.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	switch keys, err := d.settings.changedKeys(); {
	case err != nil:
		d.log.Warn(d.prefix+"config file no longer loads; the running config stays (a SIGHUP re-reads the routes and certificates only)", "file", d.settings.File, "err", err)
	case len(keys) > 0:
		d.log.Warn(d.prefix+"config file changed since start; a SIGHUP re-reads the routes and certificates only: restart or upgrade (pipegate upgrade) to apply it", "file", d.settings.File, "keys", keys)
	}
	backendTLS, err := d.res.reload(d.log)
	client := d.res.clientTLS()
	for _, srv := range append(slices.Clone(d.servers), d.probers...) {
		srv.SetTLSConfig(client, backendTLS)
	}
	return err
}

// Close releases the route sources' and the penalty store's connections;
// call it after Run.
func (d *Daemon) Close() error {
	err := d.res.close()
	if d.pools != nil {
		err = errors.Join(err, d.pools.close())
	}
	return err
}

// adminHandler serves metrics_addr: /metrics and /healthz, the
// affinity API (/affinity...), which without pools says so, and the
// session API (/sessions...).
func (d *Daemon) adminHandler() http.Handler {
	h := admin.Handler(d.registry, d.healthy)
	var stores map[string]*affinity.Store
	if d.pools != nil {
		stores = d.pools.stores()
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	aff := adminHostOnly(affinity.Handler(stores)) // it moves users: not for a rebound name
	mux.Handle("/affinity", aff)
	mux.Handle("/affinity/", aff)
	sess := d.sessionsHandler() // list and kick this instance's sessions (sessions.go)
	mux.Handle("/sessions", sess)
	mux.Handle("/sessions/", sess)
	return mux
}

// newProber makes a server of protocol that only probes backends (it
// never serves), with the daemon's backend TLS.
func (d *Daemon) newProber(protocol string) Server {
	d.reloadMu.Lock() // a Reload sees it, or it sees the reloaded TLS
	defer d.reloadMu.Unlock()
	srv, g := d.settings.protocols[protocol].NewServer(d.settings)
	g.BackendTLS = d.res.backendTLS
	g.Logger = d.log
	d.probers = append(d.probers, srv)
	return srv
}

// healthy is /healthz: 503 "draining" once the drain started.
func (d *Daemon) healthy() error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// Check validates a mail (or imap) config file and the files it names
// (certificates load, routes parse) without listening or connecting, for
// `pipegate check-config`. It says which command runs the file:
// CommandIMAP when every listener is IMAP's (both do), else CommandMail.
func Check(path string, protocols Protocols) (command string, err error) {
	s, err := Load(path, CommandMail, protocols)
	if err != nil {
		return "", err
	}
	res, err := openResources(s)
	if err != nil {
		return "", err
	}
	command = CommandIMAP
	for _, l := range s.Listen {
		if l.Protocol != CommandIMAP {
			command = CommandMail
		}
	}
	return command, res.close()
}

// orNone turns a config value where 0 means "none" into a Server field
// where 0 means the default and a negative value none.
func orNone[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

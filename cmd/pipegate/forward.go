package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"pipegate/admin"
	"pipegate/forward"
)

const fwdUsage = `usage: pipegate forward --listen ADDR --to ADDR [--to ADDR...] [flags]
       pipegate forward --config FILE [--log-format F] [--log-level L] [--metrics-addr A] [--drain-timeout D]

Addresses are host:port or unix:/path. SIGHUP reloads the config and the
certificates for new connections; SIGTERM or SIGINT stops accepting and
drains open connections until --drain-timeout.

flags:
`

// fwdOptions is the parsed command line.
type fwdOptions struct {
	configPath string
	spec       fwdSpec // the one forward of the command line
	global     fwdFile // metrics, logs, drain; Forwards unused
	set        map[string]bool
}

// fwdStrings is a repeatable string flag.
type fwdStrings []string

func (s *fwdStrings) String() string     { return strings.Join(*s, ",") }
func (s *fwdStrings) Set(v string) error { *s = append(*s, v); return nil }

// fwdRoutes is the repeatable --sni NAME=ADDR[,ADDR...] flag.
type fwdRoutes []fwdRoute

func (r *fwdRoutes) String() string { return fmt.Sprint(len(*r), " routes") }
func (r *fwdRoutes) Set(v string) error {
	name, addrs, ok := strings.Cut(v, "=")
	if !ok || name == "" || addrs == "" {
		return fmt.Errorf("want SERVERNAME=ADDR[,ADDR...], got %q", v)
	}
	*r = append(*r, fwdRoute{ServerName: name, To: strings.Split(addrs, ",")})
	return nil
}

// fwdParseArgs parses the command line; flag errors are already printed
// with the usage when it returns an error.
func fwdParseArgs(args []string, stderr io.Writer) (*fwdOptions, error) {
	o := &fwdOptions{set: map[string]bool{}}
	sp := &o.spec
	fs := flag.NewFlagSet("pipegate forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), fwdUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.configPath, "config", "", "YAML `file` with a forwards: list (every flag below has a field of the same name)")
	fs.StringVar(&sp.Name, "name", "", "forward name in logs and metrics (default: the listen address)")
	fs.StringVar(&sp.Listen, "listen", "", "`address` to accept connections on: host:port or unix:/path")
	fs.Var((*fwdStrings)(&sp.To), "to", "upstream `address` (host:port or unix:/path); repeat for failover or balancing")
	fs.Var((*fwdRoutes)(&sp.SNI), "sni", "route TLS by server name without terminating: `NAME=ADDR[,ADDR]` (NAME may be *.domain); repeatable")
	fs.StringVar(&sp.Balance, "balance", "order", "how to pick upstreams: order or roundrobin")
	fs.StringVar(&sp.TLSCert, "tls-cert", "", "terminate TLS with this certificate chain `file` (PEM)")
	fs.StringVar(&sp.TLSKey, "tls-key", "", "private key `file` of --tls-cert (PEM)")
	fs.StringVar(&sp.ClientCA, "client-ca", "", "require client certificates signed by the CAs in this `file`")
	fs.StringVar(&sp.TLSTicketKeys, "tls-ticket-keys", "", "session ticket keys `file` shared by several instances")
	fs.BoolVar(&sp.ToTLS, "to-tls", false, "connect to the upstreams with TLS (verified with the system roots or --to-ca)")
	fs.StringVar(&sp.ToCA, "to-ca", "", "verify upstream certificates with the CAs in this `file`")
	fs.StringVar(&sp.ToServerName, "to-server-name", "", "`name` to verify upstream certificates against (default: upstream host)")
	fs.StringVar(&sp.ToCert, "to-cert", "", "client certificate `file` for upstream mTLS")
	fs.StringVar(&sp.ToKey, "to-key", "", "client key `file` for upstream mTLS")
	fs.StringVar(&sp.SendProxy, "send-proxy", "", "send a PROXY protocol header to the upstream: `v1 or v2`")
	fs.BoolVar(&sp.AcceptProxy, "accept-proxy", false, "read a PROXY header (v1/v2) from --trusted-proxy peers and use its client address")
	fs.Var((*fwdStrings)(&sp.TrustedProxy), "trusted-proxy", "`CIDR` or address allowed to send a PROXY header; repeatable")
	fs.IntVar(&sp.MaxConns, "max-conns", 0, "max open connections in total (0: unlimited)")
	fs.IntVar(&sp.MaxConnsPerIP, "max-conns-per-ip", 0, "max open connections per client address, IPv6 per /64 (0: unlimited)")
	fs.StringVar(&sp.DialTimeout, "dial-timeout", "", "`duration` of one connect attempt to an upstream (default 5s)")
	fs.StringVar(&sp.HandshakeTimeout, "handshake-timeout", "", "`duration` allowed for a client's PROXY header, TLS handshake or ClientHello (default 10s)")
	fs.StringVar(&sp.IdleTimeout, "idle-timeout", "", "close after this `duration` without bytes either way (default: none)")
	fs.StringVar(&sp.MaxLifetime, "max-lifetime", "", "close connections older than this `duration` (default: none)")
	fs.StringVar(&sp.HalfCloseLinger, "half-close-linger", "", "after one side closes, wait this `duration` for the other (default 60s)")
	fs.StringVar(&sp.Backoff, "backoff", "", "after a failed connect, try that upstream after the others for this `duration`, doubling with each further failure up to 30s (default 1s)")
	fs.StringVar(&sp.TCPKeepAlive, "tcp-keepalive", "", "turn TCP keep-alive probes on, both sides, after this idle `duration` (default: off)")
	fs.StringVar(&o.global.MetricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this host:port")
	fs.StringVar(&o.global.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.global.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.global.DrainTimeout, "drain-timeout", "30s", "on SIGTERM/SIGINT, wait this long for open connections")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
		fmt.Fprintf(stderr, "%v\n", err)
		fs.Usage()
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// fwdLoad builds the configuration from the config file or the flags.
// Errors name the flag, or the file, line and field.
func fwdLoad(o *fwdOptions, cache fwdTLSCache) (*fwdLoaded, error) {
	if o.configPath != "" {
		for name := range o.set {
			switch name {
			case "config", "log-format", "log-level", "metrics-addr", "drain-timeout":
			default:
				return nil, fmt.Errorf("flag --%s: not allowed with --config (put it in the file)", name)
			}
		}
		l, err := fwdLoadFile(o.configPath, cache)
		if err != nil {
			return nil, err
		}
		// Flags given next to --config win over the file.
		if o.set["log-format"] {
			l.logFormat = o.global.LogFormat
		}
		if o.set["log-level"] {
			l.logLevel = o.global.LogLevel
		}
		if o.set["metrics-addr"] {
			l.metricsAddr = o.global.MetricsAddr
		}
		if o.set["drain-timeout"] {
			d, err := fwdDuration(o.global.DrainTimeout)
			if err != nil {
				return nil, fmt.Errorf("flag --drain-timeout: %v", err)
			}
			l.drainTimeout = d
		}
		return l, nil
	}
	if o.spec.Listen == "" {
		return nil, errors.New("flag --listen: missing (or use --config FILE)")
	}
	cfg, err := fwdBuild(o.spec, cache)
	if err != nil {
		if fe, ok := errors.AsType[*forward.FieldError](err); ok {
			return nil, fmt.Errorf("flag --%s: %v", fe.Field, fe.Err)
		}
		return nil, fmt.Errorf("flag --%v", err)
	}
	l := &fwdLoaded{
		metricsAddr: o.global.MetricsAddr,
		logFormat:   o.global.LogFormat,
		logLevel:    o.global.LogLevel,
		forwards:    []forward.Config{cfg},
	}
	if l.drainTimeout, err = fwdDuration(o.global.DrainTimeout); err != nil {
		return nil, fmt.Errorf("flag --drain-timeout: %v", err)
	}
	return l, nil
}

// runForward is `pipegate forward`: exit 0 after a drain, 1 when a
// listener cannot be opened, 2 on bad flags or config.
func runForward(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := fwdParseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	cache := fwdTLSCache{}
	loaded, err := fwdLoad(o, cache)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate forward: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, loaded.logFormat, loaded.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate forward: flag --%v\n", err)
		return 2
	}

	// Signals first, so a SIGHUP or SIGTERM right after start-up is not lost.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(term)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := forward.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return 1
	}
	d := &fwdDaemon{log: log, metrics: metrics, servers: map[string]*fwdRunning{}, loaded: loaded}
	d.retireCtx, d.retireCancel = context.WithCancel(context.Background())
	defer d.retireCancel()
	if err := d.apply(loaded.forwards, loaded.drainTimeout); err != nil {
		log.Error("start failed", "err", err)
		d.shutdown(0)
		return 1
	}
	var adm *admin.Server
	if loaded.metricsAddr != "" {
		adm, err = admin.Start(loaded.metricsAddr, admin.Handler(reg, d.healthy), log)
		if err != nil {
			log.Error("start failed", "err", err)
			d.shutdown(0)
			return 1
		}
		log.Info("metrics listening", "addr", adm.Addr())
	}

	for {
		select {
		case <-hup:
			d.reload(o, cache)
			continue
		case sig := <-term:
			log.Info("draining", "cause", sig.String(), "drain_timeout", d.loaded.drainTimeout)
		case <-ctx.Done():
			log.Info("draining", "cause", context.Cause(ctx).Error(), "drain_timeout", d.loaded.drainTimeout)
		}
		break
	}
	d.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), d.loaded.drainTimeout)
	forced := d.drain(dctx)
	cancel()
	if adm != nil {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		adm.Shutdown(actx)
		cancel()
	}
	if forced {
		log.Warn("drain deadline reached; open connections were closed")
	}
	log.Info("stopped")
	return 0
}

// fwdDaemon runs the forwards of one process.
type fwdDaemon struct {
	log      *slog.Logger
	metrics  *forward.Metrics
	draining atomic.Bool

	mu      sync.Mutex
	servers map[string]*fwdRunning // by fwdKey
	loaded  *fwdLoaded             // the configuration applied last

	retireCtx    context.Context // ends at the drain deadline
	retireCancel context.CancelFunc
	retired      sync.WaitGroup
}

type fwdRunning struct {
	srv    *forward.Server
	listen string        // as configured
	done   chan struct{} // closed when Serve returns
}

func (d *fwdDaemon) healthy() error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// apply makes the running forwards match cfgs. A forward is known by its
// name (else its listen address): one already running on the same address
// is reloaded in place; a new one, or one whose address changed, gets a new
// listener; forwards no longer configured (or moved) stop accepting and
// drain in the background for at most drain, then their connections are
// closed. When a new address cannot be listened on, nothing changes.
func (d *fwdDaemon) apply(cfgs []forward.Config, drain time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.adoptRenamed(cfgs)
	fresh := map[string]net.Listener{}
	for _, c := range cfgs {
		if r := d.servers[fwdKey(c)]; r != nil && r.listen == c.Listen {
			continue
		}
		ln, err := forward.Listen(c.Listen)
		if err != nil {
			for _, l := range fresh {
				l.Close()
			}
			return fmt.Errorf("forward %s: listen: %w", fwdName(c), err)
		}
		fresh[fwdKey(c)] = ln
	}
	var retire []*fwdRunning
	keep := map[string]bool{}
	for _, c := range cfgs {
		key := fwdKey(c)
		keep[key] = true
		r := d.servers[key]
		if r != nil && fresh[key] == nil {
			if err := r.srv.Reload(c); err != nil {
				d.log.Error("reload failed; keeping the old config", "forward", fwdName(c), "err", err)
			}
			continue
		}
		srv, err := forward.New(c, forward.Deps{Log: d.log, Metrics: d.metrics, TLSOnGoroutines: tlsOnGoroutines(), GoAccept: goAccept()})
		if err != nil { // checked by fwdBuild already
			fresh[key].Close()
			d.log.Error("forward not started", "forward", fwdName(c), "err", err)
			continue
		}
		if r != nil {
			retire = append(retire, r) // moved to another address
		}
		r = &fwdRunning{srv: srv, listen: c.Listen, done: make(chan struct{})}
		d.servers[key] = r
		ln := fresh[key]
		d.log.Info("forward listening", "forward", fwdName(c), "addr", fwdAddrString(ln.Addr()),
			"to", c.Upstreams, "sni_routes", len(c.Routes), "tls", c.TLS != nil, "to_tls", c.UpstreamTLS != nil)
		go fwdServe(srv, ln, r.done, d.log, fwdName(c))
	}
	for key, r := range d.servers {
		if !keep[key] {
			delete(d.servers, key)
			retire = append(retire, r)
		}
	}
	for _, r := range retire {
		d.log.Info("forward removed or moved; draining its connections", "forward", fwdName(r.srv.Config()), "listen", r.listen, "drain_timeout", drain)
		d.retired.Add(1)
		go fwdRetire(d.retireCtx, drain, r, d.log, &d.retired)
	}
	return nil
}

// adoptRenamed lets a forward whose name changed but whose (fixed)
// address did not keep its listener: the running server is filed under the
// new name and reloaded in place instead of clashing with a new listener.
func (d *fwdDaemon) adoptRenamed(cfgs []forward.Config) {
	wanted := map[string]bool{}
	for _, c := range cfgs {
		wanted[fwdKey(c)] = true
	}
	for _, c := range cfgs {
		key := fwdKey(c)
		if d.servers[key] != nil || strings.HasSuffix(c.Listen, ":0") {
			continue
		}
		for oldKey, r := range d.servers {
			if !wanted[oldKey] && r.listen == c.Listen {
				delete(d.servers, oldKey)
				d.servers[key] = r
				break
			}
		}
	}
}

func fwdName(c forward.Config) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Listen
}

func fwdAddrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// fwdServe runs one forward's accept loop.
func fwdServe(srv *forward.Server, ln net.Listener, done chan struct{}, log *slog.Logger, name string) {
	defer close(done)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, forward.ErrServerClosed) {
		log.Error("forward stopped accepting", "forward", name, "err", err)
	}
}

// fwdRetire drains a forward removed by a reload for at most drain (less
// when the daemon's own drain deadline, the end of parent, comes first),
// then closes its open connections.
func fwdRetire(parent context.Context, drain time.Duration, r *fwdRunning, log *slog.Logger, wg *sync.WaitGroup) {
	defer wg.Done()
	ctx, cancel := context.WithTimeout(parent, drain)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	name := fwdName(r.srv.Config())
	switch {
	case err != nil && parent.Err() == nil:
		log.Warn("removed forward: drain timeout reached; its open connections were closed", "forward", name, "listen", r.listen, "drain_timeout", drain)
	case err == nil:
		log.Info("removed forward drained", "forward", name, "listen", r.listen)
	} // else the daemon's drain deadline, logged by runForward
}

// reload re-reads the config file (or the flags' certificate files) and
// applies it; on error the running configuration stays.
func (d *fwdDaemon) reload(o *fwdOptions, cache fwdTLSCache) {
	d.log.Info("SIGHUP: reloading")
	loaded, err := fwdLoad(o, cache)
	if err == nil {
		err = d.apply(loaded.forwards, loaded.drainTimeout)
	}
	if err != nil {
		d.log.Error("reload failed; keeping the running config", "err", err)
		return
	}
	if old := d.loaded; old.metricsAddr != loaded.metricsAddr || old.logFormat != loaded.logFormat || old.logLevel != loaded.logLevel {
		d.log.Warn("metrics-addr, log-format and log-level change at restart only; kept", "metrics_addr", old.metricsAddr, "log_format", old.logFormat, "log_level", old.logLevel)
		loaded.metricsAddr, loaded.logFormat, loaded.logLevel = old.metricsAddr, old.logFormat, old.logLevel
	}
	d.loaded = loaded // drain-timeout applies from now on
	d.log.Info("reloaded", "forwards", len(loaded.forwards))
}

func (d *fwdDaemon) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d.drain(ctx)
}

// drain shuts every forward down, current and retired, within ctx.
func (d *fwdDaemon) drain(ctx context.Context) bool {
	d.mu.Lock()
	servers := d.servers
	d.servers = map[string]*fwdRunning{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	var forced atomic.Bool
	for _, r := range servers {
		wg.Add(1)
		go fwdDrainOne(ctx, r, &wg, &forced)
	}
	stop := context.AfterFunc(ctx, d.retireCancel)
	defer stop()
	wg.Wait()
	d.retired.Wait()
	return forced.Load() || ctx.Err() != nil
}

func fwdDrainOne(ctx context.Context, r *fwdRunning, wg *sync.WaitGroup, forced *atomic.Bool) {
	defer wg.Done()
	if err := r.srv.Shutdown(ctx); err != nil {
		forced.Store(true)
	}
	<-r.done
}

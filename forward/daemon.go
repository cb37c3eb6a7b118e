package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pipegate/pipegate/admin"
)

// Daemon is `pipegate forward` once its configuration is read: a Set of
// forwards, their metrics with the Go and process collectors, the
// /metrics and /healthz endpoint, the reload and the drain.
//
//	d, err := forward.NewDaemon(cfg, log) // cfg from LoadFile or BuildSpec
//	if err != nil {
//		return err
//	}
//	go reloadOnSIGHUP(d)            // d.Reload(newCfg)
//	err = d.Run(ctx)                // serves until ctx ends, then drains
type Daemon struct {
	log      *slog.Logger
	registry *prometheus.Registry
	set      *Set
	draining atomic.Bool

	// Listen, if not nil, opens the forwards' listeners instead of Listen,
	// and ListenMetrics the metrics address's instead of net.Listen: a
	// process taking over from another (a binary upgrade) serves on the
	// sockets handed over. OnServing, if not nil, is called once Run listens
	// on every forward and the metrics address. Set them before Run.
	Listen        func(addr string) (net.Listener, error)
	ListenMetrics func(addr string) (net.Listener, error)
	OnServing     func()

	mu      sync.Mutex
	cfg     *DaemonConfig // running: DrainTimeout changes at reload
	started bool          // Run applied cfg
}

// NewDaemon makes the daemon of cfg; nothing listens before Run.
func NewDaemon(cfg *DaemonConfig, log *slog.Logger) (*Daemon, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	d := &Daemon{log: log, registry: reg, cfg: cfg}
	d.set = NewSet(Deps{Log: log, Metrics: metrics, Listen: d.listen})
	reg.MustRegister(admin.NewEngineCollector(d.set.EngineStats))
	return d, nil
}

// listen opens a forward's listener with d.Listen, else Listen.
func (d *Daemon) listen(addr string) (net.Listener, error) {
	if d.Listen != nil {
		return d.Listen(addr)
	}
	return Listen(addr)
}

// startMetrics serves the metrics endpoint on addr, opened with
// d.ListenMetrics when set.
func (d *Daemon) startMetrics(addr string) (*admin.Server, error) {
	h := admin.Handler(d.registry, d.healthy)
	if d.ListenMetrics == nil {
		return admin.Start(addr, h, d.log)
	}
	ln, err := d.ListenMetrics(addr)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: listen on %s: %w", addr, err)
	}
	return admin.Serve(ln, h, d.log), nil
}

// Run opens every forward's listener and the metrics endpoint, serves
// until ctx ends, then stops accepting and drains open connections until
// the drain timeout. It logs what goes wrong; the error it returns is
// that nothing could start (a listener could not be opened), and then
// nothing runs. A drain cut short by its deadline is logged, not returned.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	cfg := d.cfg
	err := d.set.Apply(cfg.Forwards, cfg.drain())
	d.started = err == nil
	d.mu.Unlock()
	if err != nil {
		d.log.Error("start failed", "err", err)
		d.stopNow()
		return err
	}
	var adm *admin.Server
	if cfg.MetricsAddr != "" {
		adm, err = d.startMetrics(cfg.MetricsAddr)
		if err != nil {
			d.log.Error("start failed", "err", err)
			d.stopNow()
			return err
		}
		d.log.Info("metrics listening", "addr", adm.Addr())
	}
	if d.OnServing != nil {
		d.OnServing()
	}

	<-ctx.Done()
	d.mu.Lock()
	drain := d.cfg.drain()
	d.mu.Unlock()
	d.log.Info("draining", "cause", context.Cause(ctx).Error(), "drain_timeout", drain.Timeout, "drain_spread", drain.Spread)
	d.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), drain.Timeout)
	err = d.set.Shutdown(dctx)
	cancel()
	if adm != nil {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		adm.Shutdown(actx)
		cancel()
	}
	if err != nil {
		d.log.Warn("drain deadline reached; open connections were closed")
	}
	d.log.Info("stopped")
	return nil
}

// stopNow closes what a failed start opened, without waiting.
func (d *Daemon) stopNow() {
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	d.set.Shutdown(ctx)
}

// Reload makes the running forwards match cfg (Set.Apply); on error the
// running configuration stays. The metrics address and the log settings
// change at restart only: a change is logged and kept out. The drain
// timeout applies from now on. It is safe to call before and while Run
// runs; before, Run starts cfg.
func (d *Daemon) Reload(cfg *DaemonConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		if err := d.set.Apply(cfg.Forwards, cfg.drain()); err != nil {
			return err
		}
	}
	old, loaded := d.cfg, *cfg
	if old.MetricsAddr != loaded.MetricsAddr || old.LogFormat != loaded.LogFormat || old.LogLevel != loaded.LogLevel {
		d.log.Warn("metrics_addr, log_format and log_level change at restart only; kept", "metrics_addr", old.MetricsAddr, "log_format", old.LogFormat, "log_level", old.LogLevel)
		loaded.MetricsAddr, loaded.LogFormat, loaded.LogLevel = old.MetricsAddr, old.LogFormat, old.LogLevel
	}
	d.cfg = &loaded
	d.log.Info("reloaded", "forwards", len(loaded.Forwards))
	return nil
}

// Listening lists the running forwards and their addresses.
func (d *Daemon) Listening() []Listening { return d.set.Listening() }

// healthy is /healthz: 503 "draining" once the drain started.
func (d *Daemon) healthy() error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

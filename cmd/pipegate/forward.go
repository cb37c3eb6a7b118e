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
	"slices"
	"strings"
	"syscall"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/internal/listenaddr"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/upgrade/process"
)

const fwdUsage = `usage: pipegate forward --listen ADDR --to ADDR [--to ADDR...] [flags]
       pipegate forward --config FILE [--log-format F] [--log-level L] [--metrics-addr A] [--drain-timeout D] [--drain-spread D] [--tls-on-goroutines] [upgrade flags]

Addresses are host:port or unix:/path. SIGHUP reloads the config and the
certificates for new connections; SIGTERM or SIGINT stops accepting and
drains open connections until --drain-timeout. SIGUSR2 (or pipegate
upgrade --pid-file F) starts the binary anew on the same sockets and, once
it serves, drains here (docs/upgrade.md). In a config file each flag
is a snake_case key (--max-conns is max_conns; the TLS flags are the tls:
and to_tls: blocks): see docs/forward.md.

flags:
`

// fwdOptions is the parsed command line.
type fwdOptions struct {
	configPath string
	spec       forward.Spec // the one forward of the command line
	global     forward.File // metrics, logs, drain; Forwards unused
	tls        yamlconf.ServerTLS
	toTLS      bool
	toTLSFiles yamlconf.ClientTLS
	up         process.Options
	set        map[string]bool
}

// fwdStrings is a repeatable string flag.
type fwdStrings []string

func (s *fwdStrings) String() string     { return strings.Join(*s, ",") }
func (s *fwdStrings) Set(v string) error { *s = append(*s, v); return nil }

// fwdRoutes is the repeatable --sni NAME=ADDR[,ADDR...] flag.
type fwdRoutes []forward.SpecRoute

func (r *fwdRoutes) String() string { return fmt.Sprint(len(*r), " routes") }
func (r *fwdRoutes) Set(v string) error {
	name, addrs, ok := strings.Cut(v, "=")
	if !ok || name == "" || addrs == "" {
		return fmt.Errorf("want SERVERNAME=ADDR[,ADDR...], got %q", v)
	}
	*r = append(*r, forward.SpecRoute{ServerName: name, To: strings.Split(addrs, ",")})
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
	fs.StringVar(&o.configPath, "config", "", "YAML `file` with a forwards: list (each flag below has a key: docs/forward.md)")
	fs.StringVar(&sp.Name, "name", "", "forward name in logs and metrics (default: the listen address)")
	fs.StringVar(&sp.Listen, "listen", "", "`address` to accept connections on: host:port or unix:/path")
	fs.Var((*fwdStrings)(&sp.To), "to", "upstream `address` (host:port or unix:/path); repeat for failover or balancing")
	fs.Var((*fwdRoutes)(&sp.SNI), "sni", "route TLS by server name without terminating: `NAME=ADDR[,ADDR]` (NAME may be *.domain); repeatable")
	fs.StringVar(&sp.Balance, "balance", "order", "how to pick upstreams: order or roundrobin")
	fs.StringVar(&o.tls.Cert, "tls-cert", "", "terminate TLS with this certificate chain `file` (PEM)")
	fs.StringVar(&o.tls.Key, "tls-key", "", "private key `file` of --tls-cert (PEM)")
	fs.StringVar(&o.tls.ClientCA, "client-ca", "", "require client certificates signed by the CAs in this `file`")
	fs.StringVar(&o.tls.TicketKeys, "tls-ticket-keys", "", "session ticket keys `file` shared by several instances")
	fs.Func("tls-curves", "allow only these key exchange `groups`, comma-separated (X25519MLKEM768,X25519,P-256,...; default: Go's, post-quantum hybrids first)", func(v string) error {
		list := strings.Split(v, ",")
		o.tls.Curves = &list
		return nil
	})
	fs.BoolVar(&o.toTLS, "to-tls", false, "connect to the upstreams with TLS (verified with the system roots or --to-ca)")
	fs.StringVar(&o.toTLSFiles.CA, "to-ca", "", "verify upstream certificates with the CAs in this `file`")
	fs.StringVar(&o.toTLSFiles.ServerName, "to-server-name", "", "`name` to verify upstream certificates against (default: upstream host)")
	fs.StringVar(&o.toTLSFiles.Cert, "to-cert", "", "client certificate `file` for upstream mTLS")
	fs.StringVar(&o.toTLSFiles.Key, "to-key", "", "client key `file` for upstream mTLS")
	fs.StringVar(&sp.SendProxy, "send-proxy", "", "send a PROXY protocol header to the upstream: `v1 or v2`")
	fs.BoolVar(&sp.AcceptProxy, "accept-proxy", false, "read a PROXY header (v1/v2) from --trusted-proxy peers and use its client address")
	fs.Var((*fwdStrings)(&sp.TrustedProxy), "trusted-proxy", "`CIDR` or address allowed to send a PROXY header; repeatable")
	fs.IntVar(&sp.MaxConns, "max-conns", 0, "max open connections in total (0: unlimited)")
	fs.IntVar(&sp.MaxConnsPerIP, "max-conns-per-ip", 0, "max open connections per client address, IPv6 per /64 (0: unlimited)")
	fs.Var(&sp.DialTimeout, "dial-timeout", "`duration` of one connect attempt to an upstream (default 5s)")
	fs.Var(&sp.HandshakeTimeout, "handshake-timeout", "`duration` allowed for a client's PROXY header, TLS handshake or ClientHello (default 10s)")
	fs.Var(&sp.IdleTimeout, "idle-timeout", "close after this `duration` without bytes either way (default: none)")
	fs.Var(&sp.MaxLifetime, "max-lifetime", "close connections older than this `duration` (default: none)")
	fs.Var(&sp.HalfCloseLinger, "half-close-linger", "after one side closes, wait this `duration` for the other (default 60s)")
	fs.Var(&sp.Backoff, "backoff", "after a failed connect, try that upstream after the others for this `duration`, doubling with each further failure up to 30s (default 1s)")
	fs.Var(&sp.TCPKeepAlive, "tcp-keepalive", "turn TCP keep-alive probes on, both sides, after this idle `duration` (default: off)")
	fs.BoolVar(&sp.GoAccept, "go-accept", false, "accept with Go and set each connection up on a goroutine, even where the event loops could (a way back)")
	fs.BoolVar(&o.global.TLSOnGoroutines, "tls-on-goroutines", false, "keep TLS pairs on goroutines with crypto/tls, not on the event loops' TLS 1.3 record layer (a way back; all forwards)")
	fs.StringVar(&o.global.MetricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this host:port")
	fs.StringVar(&o.global.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.global.LogLevel, "log-level", "info", "debug, info, warn or error")
	o.global.DrainTimeout = yamlconf.Duration{Duration: forward.DefaultDrainTimeout, Given: true}
	fs.Var(&o.global.DrainTimeout, "drain-timeout", "on SIGTERM/SIGINT, wait this long for open connections")
	fs.Var(&o.global.DrainSpread, "drain-spread", "close the connections still open this `duration` before the drain's end one after the other over it; 0: all at the end (default: 10s, at most half of --drain-timeout)")
	registerUpgradeFlags(fs, &o.up)
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
func fwdLoad(o *fwdOptions, cache forward.TLSCache) (*forward.DaemonConfig, error) {
	if o.global.MetricsAddr != "" {
		if err := listenaddr.Check(o.global.MetricsAddr); err != nil {
			return nil, fmt.Errorf("flag --metrics-addr: %w", err)
		}
	}
	if o.configPath != "" {
		for name := range o.set {
			switch {
			case slices.Contains([]string{"config", "log-format", "log-level", "metrics-addr", "drain-timeout", "drain-spread", "tls-on-goroutines"}, name),
				slices.Contains(upgradeFlags, name):
			default:
				return nil, fmt.Errorf("flag --%s: not allowed with --config (put it in the file)", name)
			}
		}
		l, err := forward.LoadFile(o.configPath, cache)
		if err != nil {
			return nil, err
		}
		// Flags given next to --config win over the file.
		if o.set["log-format"] {
			l.LogFormat = o.global.LogFormat
		}
		if o.set["log-level"] {
			l.LogLevel = o.global.LogLevel
		}
		if o.set["metrics-addr"] {
			l.MetricsAddr = o.global.MetricsAddr
		}
		if err := fwdSetDrain(o, l); err != nil {
			return nil, err
		}
		if o.global.TLSOnGoroutines {
			for i := range l.Forwards {
				l.Forwards[i].TLSOnGoroutines = true
			}
		}
		return l, nil
	}
	if o.spec.Listen == "" {
		return nil, errors.New("flag --listen: missing (or use --config FILE)")
	}
	sp := o.spec
	if o.tls != (yamlconf.ServerTLS{}) {
		sp.TLS = &o.tls
	}
	switch {
	case o.toTLS:
		sp.ToTLS = &o.toTLSFiles
	case o.toTLSFiles != (yamlconf.ClientTLS{}):
		return nil, errors.New("flag --to-tls: not set, but --to-ca, --to-server-name, --to-cert or --to-key is")
	}
	sp.TLSOnGoroutines = o.global.TLSOnGoroutines
	cfg, err := forward.BuildSpec(sp, cache)
	if err != nil {
		return nil, yamlconf.FlagError(err, forward.FlagOf)
	}
	l := &forward.DaemonConfig{
		MetricsAddr:  o.global.MetricsAddr,
		LogFormat:    o.global.LogFormat,
		LogLevel:     o.global.LogLevel,
		DrainTimeout: o.global.DrainTimeout.Duration,
		Forwards:     []forward.Config{cfg},
	}
	if err := fwdSetDrain(o, l); err != nil {
		return nil, err
	}
	return l, nil
}

// fwdSetDrain sets --drain-timeout and --drain-spread, where given, and
// drain_spread's default.
func fwdSetDrain(o *fwdOptions, l *forward.DaemonConfig) error {
	timeout := o.global.DrainTimeout
	timeout.Given = o.set["drain-timeout"]
	return yamlconf.FlagError(l.SetDrain(timeout, o.global.DrainSpread), forward.FlagOf)
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
	// Signals first, so a SIGTERM right after start-up is not lost (and
	// SIGHUP and SIGUSR2, which startDaemonProcess subscribes to).
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(term)
	p, code := startDaemonProcess(ctx, "forward", args, &o.up, stdout, stderr)
	if p == nil {
		return code
	}
	defer p.close()
	up, hup, usr2 := p.up, p.hup, p.usr2

	cache := forward.TLSCache{}
	loaded, err := fwdLoad(o, cache)
	if err != nil {
		up.Failed(err)
		fmt.Fprintf(stderr, "pipegate forward: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, loaded.LogFormat, loaded.LogLevel)
	if err != nil {
		up.Failed(err)
		fmt.Fprintf(stderr, "pipegate forward: flag --%v\n", err)
		return 2
	}
	up.SetLog(log)

	d, err := forward.NewDaemon(loaded, log)
	if err != nil {
		up.Failed(err)
		log.Error("metrics", "err", err)
		return 1
	}
	d.Listen = up.Listen("forward", forward.Listen)
	d.ListenMetrics = up.ListenQuiet("metrics", listenTCP)
	serving := make(chan struct{})
	d.OnServing = func() { close(serving) }
	up.SetPairs(fwdHandover{d: d, setupTimeout: loaded.DrainTimeout})
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer up.Wait() // before up.Close: an attempt still running rolls back
	done := make(chan error, 1)
	go runForwardDaemon(ctx, d, done)
	stopping := ctx.Done()
	running, code := loaded, 0
	for {
		select {
		case <-hup:
			if ctx.Err() != nil { // a drain (or the hand-over's) is under way
				log.Info("SIGHUP: draining; no reload")
				continue
			}
			if l := fwdReload(o, cache, d, log); l != nil {
				running = l
			}
			up.Retain(fwdListenerNames(running, loaded.MetricsAddr))
		case <-usr2:
			up.Trigger(ctx)
		case <-stopping:
			stopping = nil
			up.Stopping()
		case r := <-up.Results():
			if cause, handedOver := up.Settle(r); handedOver {
				stop(cause)
			}
		case <-serving:
			serving = nil
			if err := up.Serving(ctx); err != nil {
				log.Error("upgrade: stopping", "err", err)
				stop(err)
				code = 1
			}
		case sig := <-term:
			// The drain's log names the signal, in the words of the
			// signal.NotifyContext main has, which may see it first.
			stop(errors.New(sig.String() + " signal received"))
		case err := <-done:
			if err != nil {
				up.Failed(err)
				return 1
			}
			return code
		}
	}
}

// fwdListenerNames are the names under which the upgrader keeps the
// sockets of cfg (the metrics address as at start: a reload keeps it).
func fwdListenerNames(cfg *forward.DaemonConfig, metricsAddr string) []string {
	names := []string{"metrics " + metricsAddr}
	for _, f := range cfg.Forwards {
		names = append(names, "forward "+f.Listen)
	}
	return names
}

// listenTCP opens a TCP listener on addr.
func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// runForwardDaemon is the goroutine running the forwards until ctx ends.
func runForwardDaemon(ctx context.Context, d *forward.Daemon, done chan<- error) {
	done <- d.Run(ctx)
}

// fwdReload re-reads the config file (or the flags' certificate files) and
// applies it; on error the running configuration stays (nil returned).
func fwdReload(o *fwdOptions, cache forward.TLSCache, d *forward.Daemon, log *slog.Logger) *forward.DaemonConfig {
	log.Info("SIGHUP: reloading")
	loaded, err := fwdLoad(o, cache)
	if err == nil {
		err = d.Reload(loaded)
	}
	if err != nil {
		log.Error("reload failed; keeping the running config", "err", err)
		return nil
	}
	return loaded
}

// checkForwardConfig validates a forward config file, certificates
// included, without listening. `pipegate check-config FILE` calls it.
func checkForwardConfig(path string) error {
	_, err := forward.LoadFile(path, forward.TLSCache{})
	return err
}

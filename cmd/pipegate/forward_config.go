package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/tlsconf"
)

// fwdFile is a forward config file (docs/forward.md); fwdFlagKeys maps
// each flag to its key.
type fwdFile struct {
	MetricsAddr  string            `yaml:"metrics_addr"`
	LogFormat    string            `yaml:"log_format"`
	LogLevel     string            `yaml:"log_level"`
	DrainTimeout yamlconf.Duration `yaml:"drain_timeout"`
	// TLSOnGoroutines sets tls_on_goroutines for every forward.
	TLSOnGoroutines bool      `yaml:"tls_on_goroutines"`
	Forwards        []fwdSpec `yaml:"forwards"`
}

// fwdSpec is one forward as written by the user, on the command line or in
// a config file; fwdBuild turns it into a forward.Config.
type fwdSpec struct {
	Name             string              `yaml:"name"`
	Listen           string              `yaml:"listen"`
	To               []string            `yaml:"to"`
	SNI              []fwdRoute          `yaml:"sni"`
	Balance          string              `yaml:"balance"`
	TLS              *yamlconf.ServerTLS `yaml:"tls"`    // terminate TLS
	ToTLS            *yamlconf.ClientTLS `yaml:"to_tls"` // TLS to the upstreams; {} for the defaults
	SendProxy        string              `yaml:"send_proxy"`
	AcceptProxy      bool                `yaml:"accept_proxy"`
	TrustedProxy     []string            `yaml:"trusted_proxy"`
	MaxConns         int                 `yaml:"max_conns"`
	MaxConnsPerIP    int                 `yaml:"max_conns_per_ip"`
	DialTimeout      yamlconf.Duration   `yaml:"dial_timeout"`
	HandshakeTimeout yamlconf.Duration   `yaml:"handshake_timeout"`
	IdleTimeout      yamlconf.Duration   `yaml:"idle_timeout"`
	MaxLifetime      yamlconf.Duration   `yaml:"max_lifetime"`
	HalfCloseLinger  yamlconf.Duration   `yaml:"half_close_linger"`
	Backoff          yamlconf.Duration   `yaml:"backoff"`
	TCPKeepAlive     yamlconf.Duration   `yaml:"tcp_keepalive"`
	GoAccept         bool                `yaml:"go_accept"`
	TLSOnGoroutines  bool                `yaml:"tls_on_goroutines"`
}

// RenamedKeys are the keys that became a block; other kebab-case keys
// ("max-conns") are told their snake_case spelling by yamlconf.
func (fwdSpec) RenamedKeys() map[string]string {
	m := map[string]string{}
	for _, fk := range fwdFlagKeys {
		if strings.Contains(fk.key, ".") {
			m[fk.flag] = fk.key
			m[strings.ReplaceAll(fk.flag, "-", "_")] = fk.key
		}
	}
	m["to-tls"] = "to_tls (a block: to_tls: {} for the system roots)"
	return m
}

// fwdRoute is an SNI route: `--sni NAME=ADDR[,ADDR...]` on the command
// line, {server_name: NAME, to: [ADDR...]} in a file.
type fwdRoute struct {
	ServerName string   `yaml:"server_name"`
	To         []string `yaml:"to"`
}

// fwdFlagKeys maps every flag of `pipegate forward` but --config to its
// key in the config file (docs/forward.md has the same table).
var fwdFlagKeys = []struct{ flag, key string }{
	{"name", "name"}, {"listen", "listen"}, {"to", "to"}, {"sni", "sni"}, {"balance", "balance"},
	{"tls-cert", "tls.cert"}, {"tls-key", "tls.key"}, {"client-ca", "tls.client_ca"}, {"tls-ticket-keys", "tls.ticket_keys"},
	{"to-tls", "to_tls"}, {"to-ca", "to_tls.ca"}, {"to-server-name", "to_tls.server_name"},
	{"to-cert", "to_tls.cert"}, {"to-key", "to_tls.key"},
	{"send-proxy", "send_proxy"}, {"accept-proxy", "accept_proxy"}, {"trusted-proxy", "trusted_proxy"},
	{"max-conns", "max_conns"}, {"max-conns-per-ip", "max_conns_per_ip"},
	{"dial-timeout", "dial_timeout"}, {"handshake-timeout", "handshake_timeout"}, {"idle-timeout", "idle_timeout"},
	{"max-lifetime", "max_lifetime"}, {"half-close-linger", "half_close_linger"}, {"backoff", "backoff"},
	{"tcp-keepalive", "tcp_keepalive"}, {"go-accept", "go_accept"}, {"tls-on-goroutines", "tls_on_goroutines"},
	{"metrics-addr", "metrics_addr"}, {"log-format", "log_format"}, {"log-level", "log_level"},
	{"drain-timeout", "drain_timeout"},
}

// fwdFlagOf names the flag of a forward's field ("trusted_proxy[1]" ->
// "trusted-proxy").
func fwdFlagOf(field string) string {
	field, _, _ = strings.Cut(field, "[")
	for _, fk := range fwdFlagKeys {
		if fk.key == field {
			return fk.flag
		}
	}
	return strings.ReplaceAll(field, "_", "-")
}

// fwdLoaded is a checked configuration, ready to run.
type fwdLoaded struct {
	metricsAddr  string
	logFormat    string
	logLevel     string
	drainTimeout time.Duration
	forwards     []forward.Config
}

// fwdDefaultDrain is --drain-timeout's default.
const fwdDefaultDrain = 30 * time.Second

// fwdTLSCache keeps the server TLS configurations across reloads, so that
// a reload re-reads the certificate files of the same tlsconf.Server
// (keeping its session ticket keys) instead of starting afresh.
type fwdTLSCache map[tlsconf.ServerFiles]*tlsconf.Server

// fwdBuild turns a spec into a forward.Config, loading certificate files.
// Fields are named at prefix ("forwards[2]." in a file; "" on the command
// line, where doc is nil). Errors are *configerr.Error.
func fwdBuild(doc *yamlconf.Doc, prefix string, sp fwdSpec, cache fwdTLSCache) (forward.Config, error) {
	cfg := forward.Config{
		Name:             sp.Name,
		Listen:           sp.Listen,
		Upstreams:        sp.To,
		SendProxy:        sp.SendProxy,
		AcceptProxy:      sp.AcceptProxy,
		MaxConns:         sp.MaxConns,
		MaxConnsPerIP:    sp.MaxConnsPerIP,
		DialTimeout:      sp.DialTimeout.Duration,
		HandshakeTimeout: sp.HandshakeTimeout.Duration,
		IdleTimeout:      sp.IdleTimeout.Duration,
		MaxLifetime:      sp.MaxLifetime.Duration,
		HalfCloseLinger:  sp.HalfCloseLinger.Duration,
		Backoff:          sp.Backoff.Duration,
		TCPKeepAlive:     sp.TCPKeepAlive.Duration,
		GoAccept:         sp.GoAccept,
		TLSOnGoroutines:  sp.TLSOnGoroutines,
	}
	fe := func(field string, err error) error { return doc.Error(prefix+field, err) }
	if sp.Listen == "" {
		return cfg, fe("listen", errors.New("missing (want host:port or unix:/path)"))
	}
	for _, r := range sp.SNI {
		cfg.Routes = append(cfg.Routes, forward.Route{ServerName: r.ServerName, Upstreams: r.To})
	}
	var err error
	if cfg.Balance, err = forward.ParseBalance(sp.Balance); err != nil {
		return cfg, fe("balance", err)
	}
	for i, text := range sp.TrustedProxy {
		p, err := listener.ParseCIDRs("trusted_proxy", []string{text})
		if err != nil {
			return cfg, fe(fmt.Sprintf("trusted_proxy[%d]", i), fwdCIDRError(text, err))
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p...)
	}
	if sp.TLS != nil {
		files, err := sp.TLS.Files(doc, prefix+"tls")
		if err != nil {
			return cfg, err
		}
		srv := cache[files]
		if srv != nil {
			err = srv.Reload()
		} else {
			srv, err = tlsconf.LoadServer(files)
		}
		if err != nil {
			return cfg, fe("tls.cert", err)
		}
		cache[files] = srv
		cfg.TLS = srv.Config()
	}
	if sp.ToTLS != nil {
		files, err := sp.ToTLS.Files(doc, prefix+"to_tls")
		if err != nil {
			return cfg, err
		}
		if files.CA != "" { // its own error first, to name it
			if _, err := tlsconf.LoadClient(tlsconf.ClientFiles{CA: files.CA}); err != nil {
				return cfg, fe("to_tls.ca", err)
			}
		}
		if cfg.UpstreamTLS, err = tlsconf.LoadClient(files); err != nil {
			return cfg, fe("to_tls.cert", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		if f, ok := errors.AsType[*forward.FieldError](err); ok {
			return cfg, fe(f.Field, f.Err)
		}
		return cfg, fe("listen", err)
	}
	return cfg, nil
}

// fwdCIDRError is a clean message for a bad trusted-proxy entry: the text,
// then the parser's reason without the Go function names around it.
func fwdCIDRError(text string, err error) error {
	reason := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		reason = inner.Error()
	}
	if i := strings.LastIndex(reason, "): "); i >= 0 {
		reason = reason[i+3:] // netip: `ParseAddr("x"): unexpected character (at "x")`
	}
	return fmt.Errorf("%q is not an IP address or CIDR prefix (%s)", strings.TrimSpace(text), reason)
}

// fwdLoadFile reads and checks a forward config file. Errors name the
// file, the line and the field: "FILE:LINE: forwards[0].max_conns: ...".
func fwdLoadFile(path string, cache fwdTLSCache) (*fwdLoaded, error) {
	var f fwdFile
	doc, err := yamlconf.Load(path, &f)
	if err != nil {
		return nil, err
	}
	if len(f.Forwards) == 0 {
		if !doc.Has("forwards") {
			return nil, doc.Errorf("forwards", "missing (want a forwards: list)")
		}
		return nil, doc.Errorf("forwards", "no forward given")
	}
	l := &fwdLoaded{
		metricsAddr:  f.MetricsAddr,
		logFormat:    f.LogFormat,
		logLevel:     f.LogLevel,
		drainTimeout: f.DrainTimeout.Or(fwdDefaultDrain),
	}
	var errs yamlconf.Errors
	if _, err := newLogger(io.Discard, f.LogFormat, ""); err != nil {
		errs.Add(doc.Errorf("log_format", "unknown format %q (want text or json)", f.LogFormat))
	}
	if _, err := newLogger(io.Discard, "", f.LogLevel); err != nil {
		errs.Add(doc.Errorf("log_level", "unknown level %q (want debug, info, warn or error)", f.LogLevel))
	}
	for i, sp := range f.Forwards {
		sp.TLSOnGoroutines = sp.TLSOnGoroutines || f.TLSOnGoroutines
		cfg, err := fwdBuild(doc, fmt.Sprintf("forwards[%d].", i), sp, cache)
		errs.Add(err)
		l.forwards = append(l.forwards, cfg)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if i, err := forward.CheckUnique(l.forwards); err != nil {
		field := "name"
		if fe, ok := errors.AsType[*forward.FieldError](err); ok {
			field, err = fe.Field, fe.Err
		}
		return nil, doc.Error(fmt.Sprintf("forwards[%d].%s", i, field), err)
	}
	return l, nil
}

// checkForwardConfig validates a forward config file, certificates
// included, without listening. `pipegate check-config FILE` calls it.
func checkForwardConfig(path string) error {
	_, err := fwdLoadFile(path, fwdTLSCache{})
	return err
}

package forward

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pipegate/pipegate/internal/listenaddr"
	"github.com/pipegate/pipegate/internal/logconf"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/tlsconf"
)

// File is a forward config file (docs/forward.md): the daemon's settings
// and its list of forwards. FlagKeys maps each flag of `pipegate forward`
// to its key.
type File struct {
	MetricsAddr  string            `yaml:"metrics_addr"`
	LogFormat    string            `yaml:"log_format"`
	LogLevel     string            `yaml:"log_level"`
	DrainTimeout yamlconf.Duration `yaml:"drain_timeout"`
	DrainSpread  yamlconf.Duration `yaml:"drain_spread"` // not Given: DefaultDrainSpread, at most half of drain_timeout
	// TLSOnGoroutines sets tls_on_goroutines for every forward.
	TLSOnGoroutines bool   `yaml:"tls_on_goroutines"`
	Forwards        []Spec `yaml:"forwards"`
}

// Spec is one forward as the operator writes it, on the command line or
// in a config file; LoadFile and BuildSpec turn it into a Config.
type Spec struct {
	Name             string              `yaml:"name"`
	Listen           string              `yaml:"listen"`
	To               []string            `yaml:"to"`
	SNI              []SpecRoute         `yaml:"sni"`
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
func (Spec) RenamedKeys() map[string]string {
	m := map[string]string{}
	for _, fk := range flagKeys {
		if strings.Contains(fk.Key, ".") {
			m[fk.Flag] = fk.Key
			m[strings.ReplaceAll(fk.Flag, "-", "_")] = fk.Key
		}
	}
	m["to-tls"] = "to_tls (a block: to_tls: {} for the system roots)"
	return m
}

// SpecRoute is an SNI route: `--sni NAME=ADDR[,ADDR...]` on the command
// line, {server_name: NAME, to: [ADDR...]} in a file.
type SpecRoute struct {
	ServerName string   `yaml:"server_name"`
	To         []string `yaml:"to"`
}

// FlagKey is a flag of `pipegate forward` and its key in the config file.
type FlagKey struct{ Flag, Key string }

// flagKeys maps every flag of `pipegate forward` but --config to its key
// in the config file (docs/forward.md has the same table).
var flagKeys = []FlagKey{
	{"name", "name"}, {"listen", "listen"}, {"to", "to"}, {"sni", "sni"}, {"balance", "balance"},
	{"tls-cert", "tls.cert"}, {"tls-key", "tls.key"}, {"client-ca", "tls.client_ca"}, {"tls-ticket-keys", "tls.ticket_keys"}, {"tls-curves", "tls.curves"},
	{"to-tls", "to_tls"}, {"to-ca", "to_tls.ca"}, {"to-server-name", "to_tls.server_name"},
	{"to-cert", "to_tls.cert"}, {"to-key", "to_tls.key"},
	{"send-proxy", "send_proxy"}, {"accept-proxy", "accept_proxy"}, {"trusted-proxy", "trusted_proxy"},
	{"max-conns", "max_conns"}, {"max-conns-per-ip", "max_conns_per_ip"},
	{"dial-timeout", "dial_timeout"}, {"handshake-timeout", "handshake_timeout"}, {"idle-timeout", "idle_timeout"},
	{"max-lifetime", "max_lifetime"}, {"half-close-linger", "half_close_linger"}, {"backoff", "backoff"},
	{"tcp-keepalive", "tcp_keepalive"}, {"go-accept", "go_accept"}, {"tls-on-goroutines", "tls_on_goroutines"},
	{"metrics-addr", "metrics_addr"}, {"log-format", "log_format"}, {"log-level", "log_level"},
	{"drain-timeout", "drain_timeout"}, {"drain-spread", "drain_spread"},
}

// FlagKeys lists every flag of `pipegate forward` but --config with its
// key in the config file ("tls-cert" is "tls.cert").
func FlagKeys() []FlagKey { return append([]FlagKey(nil), flagKeys...) }

// FlagOf names the flag of a forward's field ("trusted_proxy[1]" ->
// "trusted-proxy"), for errors about the command line.
func FlagOf(field string) string {
	field, _, _ = strings.Cut(field, "[")
	for _, fk := range flagKeys {
		if fk.Key == field {
			return fk.Flag
		}
	}
	return strings.ReplaceAll(field, "_", "-")
}

// DaemonConfig is a checked configuration of `pipegate forward`, ready
// to run.
type DaemonConfig struct {
	MetricsAddr  string // "": no metrics endpoint
	LogFormat    string
	LogLevel     string
	DrainTimeout time.Duration
	// DrainSpread: the connections still open this long before the
	// drain's end are closed one after the other over this window (Drain);
	// 0: all at the end. LoadFile and SetDrain set drain_spread's default.
	DrainSpread time.Duration
	Forwards    []Config

	spread yamlconf.Duration // drain_spread as the file gave it
}

// DefaultDrainTimeout is drain_timeout's (and --drain-timeout's) default.
const DefaultDrainTimeout = 30 * time.Second

// DefaultDrainSpread is drain_spread's default: the connections left near
// the end of a drain are closed over this window (at most half the drain).
const DefaultDrainSpread = 10 * time.Second

// SetDrain sets the drain timeout and spread given next to the file
// (flags; one not Given keeps the file's), and drain_spread's default,
// min(DefaultDrainSpread, DrainTimeout/2), unless it was given. A spread
// over the drain timeout is an error (a *configerr.Error without a file,
// naming drain_spread).
func (c *DaemonConfig) SetDrain(timeout, spread yamlconf.Duration) error {
	if timeout.Given {
		c.DrainTimeout = timeout.Duration
	}
	if spread.Given {
		c.spread = spread
	}
	var err error
	c.DrainSpread, err = drainSpread(nil, c.DrainTimeout, c.spread)
	return err
}

// drainSpread is spread when given, else its default for timeout; an
// error (at doc's line, if any) when over timeout.
func drainSpread(doc *yamlconf.Doc, timeout time.Duration, spread yamlconf.Duration) (time.Duration, error) {
	d := spread.Or(min(DefaultDrainSpread, timeout/2))
	if d > timeout {
		return d, doc.Errorf("drain_spread", "%v: want 0 (close at the deadline) up to drain_timeout (%v)", d, timeout)
	}
	return d, nil
}

// drain is how c's forwards drain (Set.Apply).
func (c *DaemonConfig) drain() Drain { return Drain{Timeout: c.DrainTimeout, Spread: c.DrainSpread} }

// TLSCache keeps the server TLS configurations across reloads, so that a
// reload re-reads the certificate files of the same tlsconf.Server
// (keeping its session ticket keys) instead of starting afresh. Give
// LoadFile and BuildSpec the same cache at each reload; nil keeps
// nothing (each load starts afresh).
type TLSCache map[tlsconf.ServerFiles]*tlsconf.Server

// LoadFile reads and checks a forward config file, certificates included.
// Errors name the file, the line and the field:
// "FILE:LINE: forwards[0].max_conns: ...".
func LoadFile(path string, cache TLSCache) (*DaemonConfig, error) {
	var f File
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
	l := &DaemonConfig{
		MetricsAddr:  f.MetricsAddr,
		LogFormat:    f.LogFormat,
		LogLevel:     f.LogLevel,
		DrainTimeout: f.DrainTimeout.Or(DefaultDrainTimeout),
		spread:       f.DrainSpread,
	}
	var errs yamlconf.Errors
	l.DrainSpread, err = drainSpread(doc, l.DrainTimeout, f.DrainSpread)
	errs.Add(err)
	if !logconf.ValidFormat(f.LogFormat) {
		errs.Add(doc.Errorf("log_format", "unknown format %q (want text or json)", f.LogFormat))
	}
	if !logconf.ValidLevel(f.LogLevel) {
		errs.Add(doc.Errorf("log_level", "unknown level %q (want debug, info, warn or error)", f.LogLevel))
	}
	if f.MetricsAddr != "" {
		if err := listenaddr.Check(f.MetricsAddr); err != nil {
			errs.Add(doc.Error("metrics_addr", err))
		}
	}
	for i, sp := range f.Forwards {
		sp.TLSOnGoroutines = sp.TLSOnGoroutines || f.TLSOnGoroutines
		cfg, err := build(doc, fmt.Sprintf("forwards[%d].", i), sp, cache)
		errs.Add(err)
		l.Forwards = append(l.Forwards, cfg)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if err := listensApart(doc, l); err != nil {
		return nil, err
	}
	if i, err := CheckUnique(l.Forwards); err != nil {
		field := "name"
		if fe, ok := errors.AsType[*FieldError](err); ok {
			field, err = fe.Field, fe.Err
		}
		return nil, doc.Error(fmt.Sprintf("forwards[%d].%s", i, field), err)
	}
	return l, nil
}

// listensApart refuses two forwards, or a forward and metrics_addr, that
// cannot listen at once (listenaddr.Conflict: 0.0.0.0:80 and :80, one
// socket path written two ways), which would fail at start with "address
// already in use". The problem is the later forward's listen, or
// metrics_addr.
func listensApart(doc *yamlconf.Doc, l *DaemonConfig) error {
	var errs yamlconf.Errors
	for i, c := range l.Forwards {
		field := fmt.Sprintf("forwards[%d].listen", i)
		if l.MetricsAddr != "" && listenaddr.Conflict(l.MetricsAddr, c.Listen) {
			errs.Add(doc.Error("metrics_addr", listenaddr.ConflictError(l.MetricsAddr, field, c.Listen)))
		}
		for j, e := range l.Forwards[:i] {
			if listenaddr.Conflict(e.Listen, c.Listen) {
				errs.Add(doc.Error(field, listenaddr.ConflictError(c.Listen, fmt.Sprintf("forwards[%d].listen", j), e.Listen)))
				break
			}
		}
	}
	return errs.Err()
}

// BuildSpec turns the forward of a command line into a Config, loading
// its certificate files. Errors name the config key of the field at fault
// as a *configerr.Error without a file; yamlconf.FlagError with FlagOf
// names the flag.
func BuildSpec(sp Spec, cache TLSCache) (Config, error) {
	return build(nil, "", sp, cache)
}

// build turns a spec into a Config, loading certificate files. Fields are
// named at prefix ("forwards[2]." in a file; "" on the command line, where
// doc is nil). Errors are *configerr.Error.
func build(doc *yamlconf.Doc, prefix string, sp Spec, cache TLSCache) (Config, error) {
	cfg := Config{
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
		cfg.Routes = append(cfg.Routes, Route{ServerName: r.ServerName, Upstreams: r.To})
	}
	var err error
	if cfg.Balance, err = ParseBalance(sp.Balance); err != nil {
		return cfg, fe("balance", err)
	}
	for i, text := range sp.TrustedProxy {
		p, err := listener.ParseCIDRs("trusted_proxy", []string{text})
		if err != nil {
			return cfg, fe(fmt.Sprintf("trusted_proxy[%d]", i), cidrError(text, err))
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
			// Served only once the reload as a whole succeeded (Set.Apply).
			cfg.tlsCommit, err = srv.Prepare()
		} else {
			srv, err = tlsconf.LoadServer(files)
		}
		if err != nil {
			return cfg, fe("tls."+tlsconf.Setting(err), err)
		}
		if cache != nil {
			cache[files] = srv
		}
		cfg.TLS = srv.Config()
		cfg.tlsServed = srv.Served
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
		if f, ok := errors.AsType[*FieldError](err); ok {
			return cfg, fe(f.Field, f.Err)
		}
		return cfg, fe("listen", err)
	}
	return cfg, nil
}

// cidrError is a clean message for a bad trusted-proxy entry (text, and
// err from listener.ParseCIDRs): the text, then the parser's reason
// without the Go function names around it.
func cidrError(text string, err error) error {
	reason := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		reason = inner.Error()
	}
	if i := strings.LastIndex(reason, "): "); i >= 0 {
		reason = reason[i+3:] // netip: `ParseAddr("x"): unexpected character (at "x")`
	}
	return fmt.Errorf("%q is not an IP address or CIDR prefix (%s)", strings.TrimSpace(text), reason)
}

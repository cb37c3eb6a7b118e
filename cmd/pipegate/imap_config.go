package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route/config"
)

// imapFileConfig is the YAML file of `pipegate imap --config FILE`; see
// docs/imap.md for every field. Durations are strings ("60s", "5m") so
// that errors can name their line.
type imapFileConfig struct {
	Listen              []imapListenConfig    `yaml:"listen"`
	TLS                 *imapTLSConfig        `yaml:"tls"`
	BackendTLS          *imapBackendTLSConfig `yaml:"backend_tls"`
	RoutesFile          string                `yaml:"routes_file"`
	RouteSources        []config.SourceConfig `yaml:"route_sources"`
	RouteCache          config.CacheConfig    `yaml:"route_cache"`
	AllowPlaintextAuth  bool                  `yaml:"allow_plaintext_auth"`
	OAuth               bool                  `yaml:"oauth"`
	IMAP4rev2           bool                  `yaml:"imap4rev2"`
	Hostname            string                `yaml:"hostname"`
	Greeting            string                `yaml:"greeting"`
	LoginTimeout        string                `yaml:"login_timeout"`
	MaxLoginFailures    int                   `yaml:"max_login_failures"`
	MaxConnections      int                   `yaml:"max_connections"`
	MaxConnectionsPerIP int                   `yaml:"max_connections_per_ip"`
	MaxPreLoginPerIP    *int                  `yaml:"max_prelogin_connections_per_ip"` // nil: the default
	UsernameChars       *string               `yaml:"username_chars"`                  // nil: Dovecot's; "": any printable UTF-8
	UsernameFormat      string                `yaml:"username_format"`
	AllowMasterUsers    bool                  `yaml:"allow_master_users"`
	AuthFailureDelay    string                `yaml:"auth_failure_delay"`
	TLSOnGoroutines     bool                  `yaml:"tls_on_goroutines"`
	AuthPenalty         *imapPenaltyConfig    `yaml:"auth_penalty"`
	DialTimeout         string                `yaml:"dial_timeout"`
	BackendTimeout      string                `yaml:"backend_timeout"`
	IdleTimeout         string                `yaml:"idle_timeout"`
	MaxLifetime         string                `yaml:"max_lifetime"`
	HalfCloseLinger     string                `yaml:"half_close_linger"`
	DrainTimeout        string                `yaml:"drain_timeout"`
	MetricsAddr         string                `yaml:"metrics_addr"`
	Log                 imapLogConfig         `yaml:"log"`
}

type imapListenConfig struct {
	Addr           string   `yaml:"addr"`
	TLS            bool     `yaml:"tls"`
	AcceptProxy    bool     `yaml:"accept_proxy"`
	TrustedProxies []string `yaml:"trusted_proxies"`
}

type imapTLSConfig struct {
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	TicketKeys string `yaml:"ticket_keys"`
}

type imapBackendTLSConfig struct {
	CA                 string `yaml:"ca"`
	ServerName         string `yaml:"server_name"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

type imapPenaltyConfig struct {
	Base   string                  `yaml:"base"`
	Max    string                  `yaml:"max"`
	Forget string                  `yaml:"forget"`
	Redis  *imapPenaltyRedisConfig `yaml:"redis"` // shared by several instances
}

type imapLogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// Defaults of the imap config beyond those of imap.Server.
const (
	imapDefaultDrainTimeout = 30 * time.Second
)

// imapSettings is a checked config: paths absolute, durations parsed.
type imapSettings struct {
	File string // the config file, for messages

	Listen       []imapListener
	TLSCert      string
	TLSKey       string
	TicketKeys   string
	BackendTLS   imapBackendTLSConfig // paths resolved
	RoutesFile   string
	RouteSources []config.SourceConfig // after routes_file, if both are given
	RouteCache   config.CacheConfig
	BaseDir      string // the config file's folder

	AllowPlaintextAuth  bool
	OAuth               bool
	IMAP4rev2           bool
	Hostname            string
	Greeting            string
	LoginTimeout        time.Duration
	MaxLoginFailures    int
	MaxConnections      int
	MaxConnectionsPerIP int
	MaxPreLoginPerIP    int // 0: no limit
	Accounts            gateway.AccountRules
	AuthFailureDelay    time.Duration // 0: none
	TLSOnGoroutines     bool          // pipe.Engine.TLSOnGoroutines
	Penalty             *imapPenalty  // nil: no penalty
	DialTimeout         time.Duration
	BackendTimeout      time.Duration
	IdleTimeout         time.Duration
	MaxLifetime         time.Duration
	HalfCloseLinger     time.Duration
	DrainTimeout        time.Duration
	MetricsAddr         string
	LogFormat, LogLevel string
}

type imapListener struct {
	Addr        string
	TLS         bool
	AcceptProxy bool
	Trusted     []netip.Prefix
}

type imapPenalty struct {
	Base, Max, Forget time.Duration
	Redis             *imapPenaltyRedisConfig // nil: in-process counts
}

// loadIMAPConfig reads and checks the config file at path (syntax, fields
// and values; not the files it names: see openIMAPResources).
func loadIMAPConfig(path string) (*imapSettings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imap config: %w", err)
	}
	return parseIMAPConfig(path, data)
}

// parseIMAPConfig checks data, the content of file.
func parseIMAPConfig(file string, data []byte) (*imapSettings, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, imapYAMLErrors(file, newIMAPYAMLIndex(nil), err)
	}
	x := newIMAPYAMLIndex(&root)
	if len(root.Content) == 0 {
		return nil, &configerr.Error{File: file, Err: errors.New("empty file (want at least listen: and routes_file: or route_sources:)")}
	}
	var fc imapFileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, imapYAMLErrors(file, x, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &configerr.Error{File: file, Line: extra.Line, Err: errors.New("more than one YAML document (a second --- ?)")}
	}
	base, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("imap config %s: %w", file, err)
	}
	c := &imapConfigChecker{file: file, x: x, base: base}
	s := c.check(&fc)
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// imapConfigChecker collects the problems of one file.
type imapConfigChecker struct {
	file string
	x    *imapYAMLIndex
	base string
	errs []error
}

// maxIMAPConfigErrors bounds the problems reported for one file.
const maxIMAPConfigErrors = 20

func (c *imapConfigChecker) errorf(field, format string, args ...any) {
	if len(c.errs) < maxIMAPConfigErrors {
		c.errs = append(c.errs, &configerr.Error{File: c.file, Line: c.x.line(field), Field: field, Err: fmt.Errorf(format, args...)})
	}
}

// path resolves a file name against the config file's folder.
func (c *imapConfigChecker) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.base, p)
}

// duration parses a duration field; def when empty. Negative durations are
// refused.
func (c *imapConfigChecker) duration(field, v string, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.errorf(field, "%q is not a duration (want e.g. 30s, 5m, 1h)", v)
		return def
	}
	if d < 0 {
		c.errorf(field, "%q: must not be negative", v)
		return def
	}
	return d
}

func (c *imapConfigChecker) nonNegative(field string, n int) int {
	if n < 0 {
		c.errorf(field, "%d: must not be negative (0 means unlimited or the default)", n)
		return 0
	}
	return n
}

func (c *imapConfigChecker) check(fc *imapFileConfig) *imapSettings {
	s := &imapSettings{
		File:                c.file,
		BaseDir:             c.base,
		AllowPlaintextAuth:  fc.AllowPlaintextAuth,
		OAuth:               fc.OAuth,
		IMAP4rev2:           fc.IMAP4rev2,
		Hostname:            fc.Hostname,
		Greeting:            fc.Greeting,
		LoginTimeout:        c.duration("login_timeout", fc.LoginTimeout, 0),
		MaxLoginFailures:    c.nonNegative("max_login_failures", fc.MaxLoginFailures),
		MaxConnections:      c.nonNegative("max_connections", fc.MaxConnections),
		MaxConnectionsPerIP: c.nonNegative("max_connections_per_ip", fc.MaxConnectionsPerIP),
		MaxPreLoginPerIP:    imap.DefaultMaxPreLoginPerIP,
		TLSOnGoroutines:     fc.TLSOnGoroutines,
		AuthFailureDelay:    c.duration("auth_failure_delay", fc.AuthFailureDelay, gateway.DefaultFailureDelay),
		Accounts:            gateway.AccountRules{Format: fc.UsernameFormat, AllowMasterUsers: fc.AllowMasterUsers},
		DialTimeout:         c.duration("dial_timeout", fc.DialTimeout, 0),
		BackendTimeout:      c.duration("backend_timeout", fc.BackendTimeout, 0),
		IdleTimeout:         c.duration("idle_timeout", fc.IdleTimeout, 0),
		MaxLifetime:         c.duration("max_lifetime", fc.MaxLifetime, 0),
		HalfCloseLinger:     c.duration("half_close_linger", fc.HalfCloseLinger, 0),
		DrainTimeout:        c.duration("drain_timeout", fc.DrainTimeout, imapDefaultDrainTimeout),
		MetricsAddr:         fc.MetricsAddr,
		LogFormat:           fc.Log.Format,
		LogLevel:            fc.Log.Level,
	}
	if _, err := newLogger(io.Discard, fc.Log.Format, ""); err != nil {
		c.errorf("log.format", "unknown format %q (want text or json)", fc.Log.Format)
	}
	if _, err := newLogger(io.Discard, "", fc.Log.Level); err != nil {
		c.errorf("log.level", "unknown level %q (want debug, info, warn or error)", fc.Log.Level)
	}
	if fc.MaxPreLoginPerIP != nil {
		s.MaxPreLoginPerIP = c.nonNegative("max_prelogin_connections_per_ip", *fc.MaxPreLoginPerIP)
	}
	if fc.UsernameChars != nil {
		s.Accounts.Chars = *fc.UsernameChars
		s.Accounts.AnyPrintable = *fc.UsernameChars == ""
		if strings.ContainsAny(*fc.UsernameChars, "\x00\r\n") {
			c.errorf("username_chars", "must not hold NUL, CR or LF")
		}
	}
	if !gateway.ValidFormat(fc.UsernameFormat) {
		c.errorf("username_format", "unknown format %q (want %s or %s)", fc.UsernameFormat, gateway.FormatAsIs, gateway.FormatLowercase)
	}
	if fc.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(fc.MetricsAddr); err != nil {
			c.errorf("metrics_addr", "%q: want HOST:PORT (%v)", fc.MetricsAddr, err)
		}
	}
	if p := fc.AuthPenalty; p != nil {
		s.Penalty = &imapPenalty{
			Base:   c.duration("auth_penalty.base", p.Base, 0),
			Max:    c.duration("auth_penalty.max", p.Max, 0),
			Forget: c.duration("auth_penalty.forget", p.Forget, 0),
		}
		if p.Redis != nil {
			r := *p.Redis
			r.PasswordFile = c.path(r.PasswordFile)
			s.Penalty.Redis = &r
		}
		if s.Penalty.Base > 0 && s.Penalty.Max > 0 && s.Penalty.Max < s.Penalty.Base {
			c.errorf("auth_penalty.max", "%v is less than base %v", s.Penalty.Max, s.Penalty.Base)
		}
	}
	c.listeners(fc, s)
	if t := fc.TLS; t != nil {
		s.TLSCert, s.TLSKey, s.TicketKeys = c.path(t.Cert), c.path(t.Key), c.path(t.TicketKeys)
		switch {
		case t.Cert == "":
			c.errorf("tls.cert", "missing (tls: needs cert and key)")
		case t.Key == "":
			c.errorf("tls.key", "missing (tls: needs cert and key)")
		}
	}
	if b := fc.BackendTLS; b != nil {
		s.BackendTLS = imapBackendTLSConfig{
			CA: c.path(b.CA), ServerName: b.ServerName,
			Cert: c.path(b.Cert), Key: c.path(b.Key),
			InsecureSkipVerify: b.InsecureSkipVerify,
		}
		if (b.Cert == "") != (b.Key == "") {
			c.errorf("backend_tls.cert", "cert and key go together (client certificate towards the backends)")
		}
	}
	s.RoutesFile = c.path(fc.RoutesFile)
	s.RouteSources, s.RouteCache = fc.RouteSources, fc.RouteCache
	if s.RoutesFile == "" && len(s.RouteSources) == 0 {
		c.errorf("routes_file", "missing: give routes_file or route_sources")
	}
	return s
}

func (c *imapConfigChecker) listeners(fc *imapFileConfig, s *imapSettings) {
	if len(fc.Listen) == 0 {
		c.errorf("listen", "missing: at least one listener (- addr: 127.0.0.1:143)")
	}
	seen := map[string]string{}
	for i, l := range fc.Listen {
		field := "listen[" + strconv.Itoa(i) + "]"
		if l.Addr == "" {
			c.errorf(field+".addr", "missing (want HOST:PORT)")
			continue
		}
		host, port, err := net.SplitHostPort(l.Addr)
		if err != nil {
			c.errorf(field+".addr", "%q: want HOST:PORT (%v)", l.Addr, err)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			c.errorf(field+".addr", "%q: port %q is not a number from 0 to 65535", l.Addr, port)
			continue
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			// A name other than localhost would be resolved at start; say
			// so rather than listen somewhere surprising.
			c.errorf(field+".addr", "%q: host must be an IP address (or empty for all)", l.Addr)
			continue
		}
		if prev, ok := seen[l.Addr]; ok && port != "0" {
			c.errorf(field+".addr", "%q is also %s", l.Addr, prev)
		}
		seen[l.Addr] = field
		if l.TLS && fc.TLS == nil {
			c.errorf(field+".tls", "implicit TLS needs the tls: section (cert and key)")
		}
		ln := imapListener{Addr: l.Addr, TLS: l.TLS, AcceptProxy: l.AcceptProxy}
		if len(l.TrustedProxies) > 0 {
			ln.Trusted, err = listener.ParseCIDRs(field+".trusted_proxies", l.TrustedProxies)
			if err != nil {
				c.errs = append(c.errs, &configerr.Error{File: c.file, Line: c.x.line(field + ".trusted_proxies"), Err: err})
			}
		}
		if l.AcceptProxy && len(l.TrustedProxies) == 0 {
			c.errorf(field+".trusted_proxies", "accept_proxy needs the load balancers' addresses (trusted_proxies: [10.0.0.5/32])")
		}
		if !l.AcceptProxy && len(l.TrustedProxies) > 0 {
			c.errorf(field+".accept_proxy", "trusted_proxies is set but accept_proxy is not true")
		}
		s.Listen = append(s.Listen, ln)
	}
}

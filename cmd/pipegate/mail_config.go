package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route/config"
	"github.com/pipegate/pipegate/tlsconf"
)

// mailFileConfig is the YAML file of `pipegate mail --config FILE` and
// `pipegate imap --config FILE`; see docs/mail.md and docs/imap.md for
// every field.
type mailFileConfig struct {
	Listen              []mailListenConfig    `yaml:"listen"`
	TLS                 *yamlconf.ServerTLS   `yaml:"tls"`
	BackendTLS          *mailBackendTLSConfig `yaml:"backend_tls"`
	RoutesFile          string                `yaml:"routes_file"`
	RouteSources        []config.SourceConfig `yaml:"route_sources"`
	RouteCache          config.CacheConfig    `yaml:"route_cache"`
	AllowPlaintextAuth  bool                  `yaml:"allow_plaintext_auth"`
	OAuth               bool                  `yaml:"oauth"`
	IMAP4rev2           bool                  `yaml:"imap4rev2"` // IMAP's
	Hostname            string                `yaml:"hostname"`
	Greeting            string                `yaml:"greeting"` // IMAP's
	POP3                mailPOP3Config        `yaml:"pop3"`
	Sieve               mailSieveConfig       `yaml:"sieve"`
	Submission          mailSubmissionConfig  `yaml:"submission"`
	LoginTimeout        yamlconf.Duration     `yaml:"login_timeout"`
	MaxLoginFailures    int                   `yaml:"max_login_failures"`
	MaxConnections      int                   `yaml:"max_connections"`
	MaxConnectionsPerIP int                   `yaml:"max_connections_per_ip"`
	MaxPreLoginPerIP    *int                  `yaml:"max_prelogin_connections_per_ip"` // nil: the default
	UsernameChars       *string               `yaml:"username_chars"`                  // nil: Dovecot's; "": any printable UTF-8
	UsernameFormat      string                `yaml:"username_format"`
	AllowMasterUsers    bool                  `yaml:"allow_master_users"`
	AuthFailureDelay    yamlconf.Duration     `yaml:"auth_failure_delay"`
	TLSOnGoroutines     bool                  `yaml:"tls_on_goroutines"`
	AuthPenalty         *mailPenaltyConfig    `yaml:"auth_penalty"`
	DialTimeout         yamlconf.Duration     `yaml:"dial_timeout"`
	BackendTimeout      yamlconf.Duration     `yaml:"backend_timeout"`
	IdleTimeout         yamlconf.Duration     `yaml:"idle_timeout"`
	MaxLifetime         yamlconf.Duration     `yaml:"max_lifetime"`
	HalfCloseLinger     yamlconf.Duration     `yaml:"half_close_linger"`
	DrainTimeout        yamlconf.Duration     `yaml:"drain_timeout"`
	MetricsAddr         string                `yaml:"metrics_addr"`
	Log                 struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

type mailListenConfig struct {
	Addr           string   `yaml:"addr"`
	Protocol       string   `yaml:"protocol"` // a key of mailProtocols; "": imap
	TLS            bool     `yaml:"tls"`
	AcceptProxy    bool     `yaml:"accept_proxy"`
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// mailPOP3Config is pop3: the POP3 listeners' own options.
type mailPOP3Config struct {
	Greeting     string   `yaml:"greeting"`
	Capabilities []string `yaml:"capabilities"` // added to the pre-login CAPA ("TOP", "UIDL")
}

// mailSieveConfig is sieve: the ManageSieve listeners' own options.
type mailSieveConfig struct {
	Greeting       string `yaml:"greeting"`
	Implementation string `yaml:"implementation"`
}

// mailSubmissionConfig is submission: the submission listeners' own
// options.
type mailSubmissionConfig struct {
	Greeting   string   `yaml:"greeting"`
	Extensions []string `yaml:"extensions"` // EHLO keywords before AUTH ("SIZE 52428800", "8BITMIME")
}

// mailBackendTLSConfig is backend_tls: the shared client block, and
// insecure_skip_verify for tests.
type mailBackendTLSConfig struct {
	yamlconf.ClientTLS `yaml:",inline"`
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

type mailPenaltyConfig struct {
	Base   yamlconf.Duration `yaml:"base"`
	Max    yamlconf.Duration `yaml:"max"`
	Forget yamlconf.Duration `yaml:"forget"`
	// Redis keeps the counts in Redis, shared by several instances
	// behind one load balancer (docs/instances.md).
	Redis *struct {
		yamlconf.Redis `yaml:",inline"`
		Prefix         string `yaml:"prefix"` // default limit.DefaultRedisPrefix
	} `yaml:"redis"`
}

// mailDefaultDrainTimeout is drain_timeout's default; the other defaults
// are the servers'.
const mailDefaultDrainTimeout = 30 * time.Second

// The commands that run the mail daemon: `pipegate mail` serves every
// protocol of mailProtocols, `pipegate imap` IMAP only.
const (
	cmdMail = "mail"
	cmdIMAP = "imap"
)

// mailSettings is a checked config: paths absolute, durations parsed.
type mailSettings struct {
	File    string        // the config file, for messages
	Command string        // cmdMail or cmdIMAP: the log's prefix
	doc     *yamlconf.Doc // for the messages of what is loaded later

	Listen     []mailListener
	TLS        *tlsconf.ServerFiles // nil without tls:
	BackendTLS tlsconf.ClientFiles
	Routes     config.Spec

	AllowPlaintextAuth  bool
	OAuth               bool
	IMAP4rev2           bool
	Hostname            string
	Greeting            string // IMAP's
	POP3                mailPOP3Config
	Sieve               mailSieveConfig
	Submission          mailSubmissionConfig
	LoginTimeout        time.Duration
	MaxLoginFailures    int
	MaxConnections      int
	MaxConnectionsPerIP int
	MaxPreLoginPerIP    int // 0: no limit
	Accounts            gateway.AccountRules
	AuthFailureDelay    time.Duration // 0: none
	TLSOnGoroutines     bool          // pipe.Engine.TLSOnGoroutines
	Penalty             *mailPenalty  // nil: the defaults, in-process
	DialTimeout         time.Duration
	BackendTimeout      time.Duration
	IdleTimeout         time.Duration
	MaxLifetime         time.Duration
	HalfCloseLinger     time.Duration
	DrainTimeout        time.Duration
	MetricsAddr         string
	LogFormat, LogLevel string
}

type mailListener struct {
	Addr        string
	Protocol    string // a key of mailProtocols
	TLS         bool
	AcceptProxy bool
	Trusted     []netip.Prefix
}

type mailPenalty struct {
	Base, Max, Forget time.Duration
	Redis             *redis.Options // nil: in-process counts
	RedisPrefix       string
}

// loadMailConfig reads and checks the config file at path for command
// (cmdMail, or cmdIMAP: IMAP listeners only): syntax, fields, values, and
// that the files it names can be read (loading them is
// openMailResources').
func loadMailConfig(path, command string) (*mailSettings, error) {
	var fc mailFileConfig
	doc, err := yamlconf.Load(path, &fc)
	if err != nil {
		return nil, err
	}
	if reflect.ValueOf(fc).IsZero() {
		return nil, doc.Errorf("", "empty file (want at least listen: and routes_file: or route_sources:)")
	}
	c := &mailChecker{doc: doc, command: command}
	s := c.check(&fc)
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// mailChecker collects the problems of one file.
type mailChecker struct {
	doc     *yamlconf.Doc
	command string
	errs    yamlconf.Errors
}

func (c *mailChecker) errorf(field, format string, args ...any) {
	c.errs.Add(c.doc.Errorf(field, format, args...))
}

func (c *mailChecker) nonNegative(field string, n int) int {
	if n < 0 {
		c.errorf(field, "%d: must not be negative (0 means unlimited or the default)", n)
		return 0
	}
	return n
}

func (c *mailChecker) check(fc *mailFileConfig) *mailSettings {
	s := &mailSettings{
		File:                c.doc.File,
		Command:             c.command,
		doc:                 c.doc,
		AllowPlaintextAuth:  fc.AllowPlaintextAuth,
		OAuth:               fc.OAuth,
		IMAP4rev2:           fc.IMAP4rev2,
		Hostname:            fc.Hostname,
		Greeting:            fc.Greeting,
		POP3:                fc.POP3,
		Sieve:               fc.Sieve,
		Submission:          fc.Submission,
		LoginTimeout:        fc.LoginTimeout.Duration,
		MaxLoginFailures:    c.nonNegative("max_login_failures", fc.MaxLoginFailures),
		MaxConnections:      c.nonNegative("max_connections", fc.MaxConnections),
		MaxConnectionsPerIP: c.nonNegative("max_connections_per_ip", fc.MaxConnectionsPerIP),
		MaxPreLoginPerIP:    imap.DefaultMaxPreLoginPerIP,
		TLSOnGoroutines:     fc.TLSOnGoroutines,
		AuthFailureDelay:    fc.AuthFailureDelay.Or(gateway.DefaultFailureDelay),
		Accounts:            gateway.AccountRules{Format: fc.UsernameFormat, AllowMasterUsers: fc.AllowMasterUsers},
		DialTimeout:         fc.DialTimeout.Duration,
		BackendTimeout:      fc.BackendTimeout.Duration,
		IdleTimeout:         fc.IdleTimeout.Duration,
		MaxLifetime:         fc.MaxLifetime.Duration,
		HalfCloseLinger:     fc.HalfCloseLinger.Duration,
		DrainTimeout:        fc.DrainTimeout.Or(mailDefaultDrainTimeout),
		MetricsAddr:         fc.MetricsAddr,
		LogFormat:           fc.Log.Format,
		LogLevel:            fc.Log.Level,
		Routes: config.Spec{
			Dir: c.doc.Dir, RoutesFile: c.doc.Path(fc.RoutesFile),
			Sources: fc.RouteSources, Cache: fc.RouteCache,
		},
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
	c.lines("greeting", fc.Greeting)
	c.lines("pop3.greeting", fc.POP3.Greeting)
	c.lines("sieve.greeting", fc.Sieve.Greeting)
	c.lines("sieve.implementation", fc.Sieve.Implementation)
	c.lines("submission.greeting", fc.Submission.Greeting)
	for i, v := range fc.POP3.Capabilities {
		c.lines(fmt.Sprintf("pop3.capabilities[%d]", i), v)
	}
	for i, v := range fc.Submission.Extensions {
		c.lines(fmt.Sprintf("submission.extensions[%d]", i), v)
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
		s.Penalty = &mailPenalty{Base: p.Base.Duration, Max: p.Max.Duration, Forget: p.Forget.Duration}
		if p.Base.Duration > 0 && p.Max.Duration > 0 && p.Max.Duration < p.Base.Duration {
			c.errorf("auth_penalty.max", "%v is less than base %v", p.Max.Duration, p.Base.Duration)
		}
		if p.Redis != nil {
			opts, err := p.Redis.Options(c.doc, "auth_penalty.redis")
			c.errs.Add(err)
			s.Penalty.Redis, s.Penalty.RedisPrefix = opts, p.Redis.Prefix
		}
	}
	c.listeners(fc, s)
	if t := fc.TLS; t != nil {
		if t.ClientCA != "" {
			c.errorf("tls.client_ca", "not supported by pipegate %s (it asks clients for no certificate); remove it", c.command)
		}
		files, err := t.Files(c.doc, "tls")
		c.errs.Add(err)
		s.TLS = &files
	}
	if b := fc.BackendTLS; b != nil {
		files, err := b.Files(c.doc, "backend_tls")
		c.errs.Add(err)
		files.InsecureSkipVerify = b.InsecureSkipVerify
		s.BackendTLS = files
	}
	s.Routes.ServerName = s.BackendTLS.ServerName
	if fc.RoutesFile == "" && len(fc.RouteSources) == 0 {
		c.errorf("routes_file", "missing: give routes_file or route_sources")
	}
	return s
}

// lines checks a text sent to clients as is: printable, one line.
func (c *mailChecker) lines(field, v string) {
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			c.errorf(field, "%q: must be one line of printable text", v)
			return
		}
	}
}

// protocol checks a listener's protocol: one of mailProtocols, and IMAP
// under `pipegate imap`.
func (c *mailChecker) protocol(field, p string) string {
	if p == "" {
		return cmdIMAP
	}
	if _, ok := mailProtocols[p]; !ok {
		hint := ""
		if strings.EqualFold(p, "smtp") {
			hint = "; SMTP submission is protocol: submission"
		}
		c.errorf(field, "%q: unknown protocol (want one of %s%s)", p, protocolNames(), hint)
		return p
	}
	if c.command == cmdIMAP && p != cmdIMAP {
		c.errorf(field, "%q: pipegate imap serves IMAP only; run pipegate mail for %s", p, p)
	}
	return p
}

func (c *mailChecker) listeners(fc *mailFileConfig, s *mailSettings) {
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
		ln := mailListener{Addr: l.Addr, Protocol: c.protocol(field+".protocol", l.Protocol), TLS: l.TLS, AcceptProxy: l.AcceptProxy}
		for j, text := range l.TrustedProxies {
			p, err := listener.ParseCIDRs("trusted_proxies", []string{text})
			if err != nil {
				c.errs.Add(c.doc.Error(fmt.Sprintf("%s.trusted_proxies[%d]", field, j), fwdCIDRError(text, err)))
			}
			ln.Trusted = append(ln.Trusted, p...)
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

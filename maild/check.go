package maild

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/listenaddr"
	"github.com/pipegate/pipegate/internal/logconf"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route/config"
)

// checker collects the problems of one file.
type checker struct {
	doc       *yamlconf.Doc
	command   string
	protocols Protocols
	errs      yamlconf.Errors
}

func (c *checker) errorf(field, format string, args ...any) {
	c.errs.Add(c.doc.Errorf(field, format, args...))
}

func (c *checker) nonNegative(field string, n int) int {
	if n < 0 {
		c.errorf(field, "%d: must not be negative (0 means unlimited or the default)", n)
		return 0
	}
	return n
}

func (c *checker) check(fc *fileConfig) *Settings {
	s := &Settings{
		File:                c.doc.File,
		Command:             c.command,
		doc:                 c.doc,
		protocols:           c.protocols,
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
		MaxPreLoginPerIP:    gateway.DefaultMaxPreLoginPerIP,
		TLSOnGoroutines:     fc.TLSOnGoroutines,
		AuthFailureDelay:    fc.AuthFailureDelay.Or(gateway.DefaultFailureDelay),
		// lowercase unless said otherwise: the account routed, limited and
		// logged is then the one Dovecot (%Lu) and Cyrus log in.
		Accounts:        gateway.AccountRules{Format: cmp.Or(fc.UsernameFormat, gateway.FormatLowercase), AllowMasterUsers: fc.AllowMasterUsers, DefaultDomain: fc.DefaultDomain},
		DialTimeout:     fc.DialTimeout.Duration,
		BackendTimeout:  fc.BackendTimeout.Duration,
		IdleTimeout:     fc.IdleTimeout.Duration,
		MaxLifetime:     fc.MaxLifetime.Duration,
		HalfCloseLinger: fc.HalfCloseLinger.Duration,
		DrainTimeout:    fc.DrainTimeout.Or(DefaultDrainTimeout),
		MetricsAddr:     fc.MetricsAddr,
		LogFormat:       fc.Log.Format,
		LogLevel:        fc.Log.Level,
		Routes: config.Spec{
			Dir: c.doc.Dir, RoutesFile: c.doc.Path(fc.RoutesFile),
			Sources: fc.RouteSources, Cache: fc.RouteCache,
		},
	}
	if !logconf.ValidFormat(fc.Log.Format) {
		c.errorf("log.format", "unknown format %q (want text or json)", fc.Log.Format)
	}
	if !logconf.ValidLevel(fc.Log.Level) {
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
	if err := s.Accounts.CheckDefaultDomain(); err != nil {
		c.errorf("default_domain", "%v", err)
	}
	if !gateway.ValidFormat(fc.UsernameFormat) {
		c.errorf("username_format", "unknown format %q (want %s or %s)", fc.UsernameFormat, gateway.FormatAsIs, gateway.FormatLowercase)
	}
	if fc.MetricsAddr != "" {
		c.listenAddr("metrics_addr", fc.MetricsAddr)
	}
	if p := fc.AuthPenalty; p != nil {
		s.Penalty = &Penalty{Base: p.Base.Duration, Max: p.Max.Duration, Forget: p.Forget.Duration}
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
	for i, text := range fc.LoginTrusted {
		p, err := listener.ParseCIDRs("login_trusted_networks", []string{text})
		if err != nil {
			c.errs.Add(c.doc.Error(fmt.Sprintf("login_trusted_networks[%d]", i), cidrError(text, err)))
		}
		s.LoginTrustedNetworks = append(s.LoginTrustedNetworks, p...)
	}
	c.pools(fc, s)
	s.DrainSpread = min(DefaultDrainSpread, s.DrainTimeout/2)
	if d := fc.DrainSpread; d != nil {
		s.DrainSpread = d.Duration
		if d.Duration < 0 || d.Duration > s.DrainTimeout {
			c.errorf("drain_spread", "%v: want 0 (close at the deadline) up to drain_timeout (%v)", d.Duration, s.DrainTimeout)
		}
	}
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
	for _, p := range s.Pools { // members too take backend_tls.server_name
		for _, m := range p.Members {
			for proto, b := range m.Backends {
				m.Backends[proto] = b.WithDefaultServerName(s.BackendTLS.ServerName)
			}
		}
	}
	if fc.RoutesFile == "" && len(fc.RouteSources) == 0 {
		c.errorf("routes_file", "missing: give routes_file or route_sources")
	}
	return s
}

// lines checks a text sent to clients as is: printable, one line.
func (c *checker) lines(field, v string) {
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			c.errorf(field, "%q: must be one line of printable text", v)
			return
		}
	}
}

// protocol checks a listener's protocol: one of the Protocols, and IMAP
// under `pipegate imap`.
func (c *checker) protocol(field, p string) string {
	if p == "" {
		return CommandIMAP
	}
	if _, ok := c.protocols[p]; !ok {
		hint := ""
		if strings.EqualFold(p, "smtp") {
			hint = "; SMTP submission is protocol: submission"
		}
		c.errorf(field, "%q: unknown protocol (want one of %s%s)", p, c.protocols.names(), hint)
		return p
	}
	if c.command == CommandIMAP && p != CommandIMAP {
		c.errorf(field, "%q: pipegate imap serves IMAP only; run pipegate mail for %s", p, p)
	}
	return p
}

// listenAddr checks an address to listen on, as field
// (listenaddr.Check).
func (c *checker) listenAddr(field, addr string) bool {
	if err := listenaddr.Check(addr); err != nil {
		c.errs.Add(c.doc.Error(field, err))
		return false
	}
	return true
}

func (c *checker) listeners(fc *fileConfig, s *Settings) {
	if len(fc.Listen) == 0 {
		c.errorf("listen", "missing: at least one listener (- addr: 127.0.0.1:143)")
	}
	var seen []listenAt // the good addresses so far, metrics_addr first
	if fc.MetricsAddr != "" && listenaddr.Check(fc.MetricsAddr) == nil {
		seen = append(seen, listenAt{"metrics_addr", fc.MetricsAddr})
	}
	for i, l := range fc.Listen {
		field := "listen[" + strconv.Itoa(i) + "]"
		if l.Addr == "" {
			c.errorf(field+".addr", "missing (want HOST:PORT)")
			continue
		}
		if !c.listenAddr(field+".addr", l.Addr) {
			continue
		}
		c.apart(seen, field+".addr", l.Addr)
		seen = append(seen, listenAt{field + ".addr", l.Addr})
		if l.TLS && fc.TLS == nil {
			c.errorf(field+".tls", "implicit TLS needs the tls: section (cert and key)")
		}
		ln := Listener{Addr: l.Addr, Protocol: c.protocol(field+".protocol", l.Protocol), TLS: l.TLS, AcceptProxy: l.AcceptProxy}
		for j, text := range l.TrustedProxies {
			p, err := listener.ParseCIDRs("trusted_proxies", []string{text})
			if err != nil {
				c.errs.Add(c.doc.Error(fmt.Sprintf("%s.trusted_proxies[%d]", field, j), cidrError(text, err)))
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

// listenAt is an address listened on, and its field.
type listenAt struct{ field, addr string }

// apart checks that addr, at field, can be listened on next to each of
// seen: the daemon would fail to start ("address already in use") when
// one port is given twice, however written (0.0.0.0:143 and :143). The
// problem is addr's; metrics_addr's when seen holds a listener.
func (c *checker) apart(seen []listenAt, field, addr string) {
	for _, s := range seen {
		if listenaddr.Conflict(s.addr, addr) {
			if s.field == "metrics_addr" { // written first, checked first: name the key that is out of place
				c.errs.Add(c.doc.Error(s.field, listenaddr.ConflictError(s.addr, field, addr)))
			} else {
				c.errs.Add(c.doc.Error(field, listenaddr.ConflictError(addr, s.field, s.addr)))
			}
			return
		}
	}
}

// cidrError is a clean message for a bad trusted_proxies entry (text, and
// err from listener.ParseCIDRs): the text, then the parser's reason
// without the Go function names around it. forward's config says the same.
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

package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode says how to speak TLS to a backend.
type TLSMode int

const (
	TLSNone     TLSMode = iota // plain TCP
	TLSStartTLS                // plain, then STARTTLS
	TLSImplicit                // TLS from the first byte
)

func (m TLSMode) String() string {
	switch m {
	case TLSStartTLS:
		return "starttls"
	case TLSImplicit:
		return "tls"
	}
	return "none"
}

// ParseTLSMode reads the TLS mode a routing source's data gives a backend
// in words, in any case: "", "none" or "plain"; "starttls"; "tls", "ssl"
// or "implicit". The error does not quote word: callers name it and its
// field.
func ParseTLSMode(word string) (TLSMode, error) {
	switch strings.ToLower(word) {
	case "", "none", "plain":
		return TLSNone, nil
	case "starttls":
		return TLSStartTLS, nil
	case "tls", "ssl", "implicit":
		return TLSImplicit, nil
	}
	return 0, errors.New("want none, starttls or tls")
}

// Backend is one server a route may send a client to.
//
// Written as a URL: imap://host:port (plain), imap+starttls://host:port,
// imaps://host:port (and the schemes other protocols register, see
// Schemes), with optional query parameters:
//
//	server_name=NAME        name to verify the backend's certificate against (default: host)
//	client_addr=MODE        how the client's address is passed: id (IMAP ID), xclient, proxy
//	                        (a PROXY protocol v2 header) or none; default: the scheme's (IMAP: id)
//	proxy=v1|v2             a PROXY protocol header of that version (client_addr=proxy)
//	id=0                    the same as client_addr=none (older spelling)
//	login=xclient           submission: name the account with XCLIENT LOGIN= and do
//	                        not authenticate at the backend (nginx's default, for a
//	                        Postfix without SASL that trusts the proxy); only for
//	                        routes whose source checked the password (Route.Checked)
//
// Or written pool:NAME: a pool of shared-storage backends (the daemon's
// pools: block), whose member the gateway picks per user so that all of
// a user's sessions, of every protocol, reach one member (package
// affinity). Such a Backend has only Pool set.
type Backend struct {
	// Pool names the pool for pool:NAME; the other fields are then empty.
	Pool       string
	Protocol   string // "imap"
	Addr       string // host:port
	TLS        TLSMode
	ServerName string // for certificate verification; default: host of Addr
	// ClientAddr is how the client's address is passed to the backend.
	ClientAddr ClientAddrMode
	// ProxyVersion is the PROXY protocol version with ClientAddrProxy:
	// "v1" or "v2".
	ProxyVersion string
	// LoginXCLIENT (login=xclient): the gateway names the account with
	// XCLIENT LOGIN= instead of logging in, which only a route whose
	// source checked the password may use (Route.Checked).
	LoginXCLIENT bool
}

// String gives the backend back as a URL.
func (b Backend) String() string {
	if b.Pool != "" {
		return PoolScheme + b.Pool
	}
	scheme := DefaultSchemes.name(b.Protocol, b.TLS)
	if scheme == "" {
		scheme = b.Protocol
	}
	q := url.Values{}
	if host, _, _ := net.SplitHostPort(b.Addr); b.ServerName != "" && b.ServerName != host {
		q.Set("server_name", b.ServerName)
	}
	sc, _ := DefaultSchemes.Lookup(scheme)
	switch {
	case b.ClientAddr == ClientAddrProxy:
		q.Set("proxy", b.ProxyVersion)
	case b.ClientAddr != "" && b.ClientAddr != sc.ClientAddr:
		q.Set("client_addr", string(b.ClientAddr))
	}
	if b.LoginXCLIENT {
		q.Set("login", "xclient")
	}
	// An IPv6 zone's '%' is "%25" in a URL.
	s := scheme + "://" + strings.Replace(b.Addr, "%", "%25", 1)
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// ParseBackend parses a backend URL (see Backend) with DefaultSchemes.
func ParseBackend(s string) (Backend, error) { return DefaultSchemes.ParseBackend(s) }

// ParseBackend parses a backend URL (see Backend) with the schemes of t.
func (t *Schemes) ParseBackend(s string) (Backend, error) {
	if name, ok := strings.CutPrefix(s, PoolScheme); ok {
		if !ValidPoolName(name) {
			return Backend{}, fmt.Errorf("backend %q: pool name %q: want letters, digits, '-' and '_'", s, name)
		}
		return Backend{Pool: name}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Backend{}, fmt.Errorf("backend %q: %w", s, err)
	}
	sc, ok := t.Lookup(u.Scheme)
	if !ok {
		return Backend{}, fmt.Errorf("backend %q: unknown scheme %q (want one of %s)", s, u.Scheme, t.names())
	}
	b := Backend{Protocol: sc.Protocol, TLS: sc.TLS, ClientAddr: sc.ClientAddr}
	if u.Host == "" || u.Path != "" && u.Path != "/" || u.User != nil {
		return Backend{}, fmt.Errorf("backend %q: want SCHEME://HOST:PORT", s)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return Backend{}, fmt.Errorf("backend %q: no host", s)
	}
	if port == "" {
		port = sc.Port
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Backend{}, fmt.Errorf("backend %q: port %q: want 1-65535", s, port)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return Backend{}, fmt.Errorf("backend %q: host %q: %v", s, host, err)
		}
	} else if !validHostName(host) {
		return Backend{}, fmt.Errorf("backend %q: host %q: %s", s, host, hostRule)
	}
	b.Addr = net.JoinHostPort(host, port)
	b.ServerName = host
	q := u.Query()
	modes := 0 // client_addr, proxy and id each set the mode: one of them only
	for k := range q {
		switch k {
		case "server_name":
			if q.Get(k) == "" {
				return Backend{}, fmt.Errorf("backend %q: server_name is empty", s)
			}
			b.ServerName = q.Get(k)
		case "client_addr":
			m, err := parseClientAddr(q.Get(k))
			if err != nil {
				return Backend{}, fmt.Errorf("backend %q: %w", s, err)
			}
			if !sc.allows(m) {
				return Backend{}, fmt.Errorf("backend %q: client_addr=%s: %s cannot pass the address that way", s, m, sc.Protocol)
			}
			b.ClientAddr = m
			if m == ClientAddrProxy && b.ProxyVersion == "" {
				b.ProxyVersion = "v2"
			}
			modes++
		case "id":
			switch q.Get(k) {
			case "0", "off", "false", "no":
				b.ClientAddr = ClientAddrNone
			case "1", "on", "true", "yes":
				b.ClientAddr = ClientAddrID
			default:
				return Backend{}, fmt.Errorf("backend %q: id=%q: want 0 or 1", s, q.Get(k))
			}
		case "proxy":
			switch v := q.Get(k); v {
			case "v1", "v2":
				b.ClientAddr, b.ProxyVersion = ClientAddrProxy, v
			default:
				return Backend{}, fmt.Errorf("backend %q: proxy=%q: want v1 or v2", s, v)
			}
			modes++
		case "login":
			switch v := q.Get(k); {
			case v == "auth":
				b.LoginXCLIENT = false
			case v == "xclient" && sc.XClientLogin:
				b.LoginXCLIENT = true
			case v == "xclient":
				return Backend{}, fmt.Errorf("backend %q: login=xclient: %s cannot log in that way (submission only)", s, sc.Protocol)
			default:
				return Backend{}, fmt.Errorf("backend %q: login=%q: want auth or xclient", s, v)
			}
		default:
			return Backend{}, fmt.Errorf("backend %q: unknown parameter %q", s, k)
		}
	}
	if modes > 1 && !(q.Get("client_addr") == "proxy" && q.Has("proxy")) {
		return Backend{}, fmt.Errorf("backend %q: client_addr and proxy disagree: give one", s)
	}
	if q.Has("proxy") {
		b.ClientAddr = ClientAddrProxy // id=0&proxy=v2, the older spelling
	} else if q.Has("id") && q.Has("client_addr") {
		return Backend{}, fmt.Errorf("backend %q: id and client_addr: give client_addr only", s)
	}
	return b, nil
}

// WithDefaultServerName returns b with name as the server name to verify
// its certificate against, when b names none itself (its server name is
// the host of its address): backend_tls.server_name for the backends of
// routes and pools.
func (b Backend) WithDefaultServerName(name string) Backend {
	if host, _, err := net.SplitHostPort(b.Addr); name != "" && err == nil && b.ServerName == host {
		b.ServerName = name
	}
	return b
}

// PoolScheme prefixes a backend that names a pool: pool:NAME.
const PoolScheme = "pool:"

// ValidPoolName reports whether name can name a pool: 1 to 64 ASCII
// letters, digits, '-' or '_'.
func ValidPoolName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// hostRule says what validHostName takes, for errors.
const hostRule = "want an IP address or a name of ASCII letters, digits, '-', '_' and '.' (an international name in its xn-- form)"

// validHostName reports whether host is a DNS name as a backend address
// may carry it: what url.Parse decoded from %-escapes (a '%', a byte
// outside ASCII) would not be the name the route was written with.
func validHostName(host string) bool {
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return host != ""
}

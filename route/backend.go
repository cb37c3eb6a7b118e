package route

import (
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

// Backend is one server a route may send a client to.
//
// Written as a URL: imap://host:port (plain), imap+starttls://host:port,
// imaps://host:port, with optional query parameters:
//
//	server_name=NAME  name to verify the backend's certificate against (default: host)
//	id=0              do not send the client's address with IMAP ID
//	proxy=v1|v2       send a PROXY protocol header first (usually with id=0)
type Backend struct {
	Protocol   string // "imap"
	Addr       string // host:port
	TLS        TLSMode
	ServerName string // for certificate verification; default: host of Addr
	SendID     bool   // send the client's address with ID (default true)
	SendProxy  string // "", "v1" or "v2"
}

// String gives the backend back as a URL.
func (b Backend) String() string {
	scheme := b.Protocol
	switch b.TLS {
	case TLSStartTLS:
		scheme += "+starttls"
	case TLSImplicit:
		scheme += "s"
	}
	q := url.Values{}
	if host, _, _ := net.SplitHostPort(b.Addr); b.ServerName != "" && b.ServerName != host {
		q.Set("server_name", b.ServerName)
	}
	if !b.SendID {
		q.Set("id", "0")
	}
	if b.SendProxy != "" {
		q.Set("proxy", b.SendProxy)
	}
	s := scheme + "://" + b.Addr
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// DefaultPorts for the schemes ParseBackend knows.
var defaultPorts = map[string]string{"imap": "143", "imap+starttls": "143", "imaps": "993"}

// ParseBackend parses a backend URL (see Backend).
func ParseBackend(s string) (Backend, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Backend{}, fmt.Errorf("backend %q: %w", s, err)
	}
	b := Backend{SendID: true}
	switch strings.ToLower(u.Scheme) {
	case "imap":
		b.Protocol, b.TLS = "imap", TLSNone
	case "imap+starttls":
		b.Protocol, b.TLS = "imap", TLSStartTLS
	case "imaps":
		b.Protocol, b.TLS = "imap", TLSImplicit
	default:
		return Backend{}, fmt.Errorf("backend %q: unknown scheme %q (want imap, imap+starttls or imaps)", s, u.Scheme)
	}
	if u.Host == "" || u.Path != "" && u.Path != "/" || u.User != nil {
		return Backend{}, fmt.Errorf("backend %q: want SCHEME://HOST:PORT", s)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return Backend{}, fmt.Errorf("backend %q: no host", s)
	}
	if port == "" {
		port = defaultPorts[strings.ToLower(u.Scheme)]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Backend{}, fmt.Errorf("backend %q: port %q: want 1-65535", s, port)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return Backend{}, fmt.Errorf("backend %q: host %q: %v", s, host, err)
		}
	}
	b.Addr = net.JoinHostPort(host, port)
	b.ServerName = host
	q := u.Query()
	for k := range q {
		switch k {
		case "server_name":
			if q.Get(k) == "" {
				return Backend{}, fmt.Errorf("backend %q: server_name is empty", s)
			}
			b.ServerName = q.Get(k)
		case "id":
			switch q.Get(k) {
			case "0", "off", "false", "no":
				b.SendID = false
			case "1", "on", "true", "yes":
				b.SendID = true
			default:
				return Backend{}, fmt.Errorf("backend %q: id=%q: want 0 or 1", s, q.Get(k))
			}
		case "proxy":
			switch v := q.Get(k); v {
			case "v1", "v2":
				b.SendProxy = v
			default:
				return Backend{}, fmt.Errorf("backend %q: proxy=%q: want v1 or v2", s, v)
			}
		default:
			return Backend{}, fmt.Errorf("backend %q: unknown parameter %q", s, k)
		}
	}
	return b, nil
}

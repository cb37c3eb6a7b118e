package route

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ClientAddrMode says how the gateway passes the client's address to a
// backend.
type ClientAddrMode string

const (
	ClientAddrID      ClientAddrMode = "id"      // IMAP ID with x-originating-ip (Dovecot, with login_trusted_networks)
	ClientAddrXCLIENT ClientAddrMode = "xclient" // XCLIENT (POP3, ManageSieve and SMTP submission of Dovecot and Postfix)
	ClientAddrProxy   ClientAddrMode = "proxy"   // a PROXY protocol header first (Backend.ProxyVersion)
	ClientAddrNone    ClientAddrMode = "none"    // not passed: the backend sees the gateway's address
)

// Scheme is what a backend URL scheme stands for.
type Scheme struct {
	Protocol string  // "imap", "pop3", ...
	TLS      TLSMode // how TLS is spoken to the backend
	Port     string  // the port when the URL gives none
	// ClientAddr is the default way to pass the client's address;
	// ClientAddrModes the ways the protocol can (ClientAddrProxy and
	// ClientAddrNone are always allowed).
	ClientAddr      ClientAddrMode
	ClientAddrModes []ClientAddrMode
	// XClientLogin: the protocol can name the account with XCLIENT LOGIN=
	// instead of authenticating (login=xclient; submission).
	XClientLogin bool
}

// Schemes maps URL schemes (lower case) to what they stand for. The zero
// value knows nothing; use NewSchemes for IMAP's. It is safe for
// concurrent use.
type Schemes struct {
	mu sync.RWMutex
	m  map[string]Scheme
}

// DefaultSchemes is the table ParseBackend reads: IMAP's schemes (imap,
// imap+starttls, imaps), and whatever protocol packages register with
// RegisterScheme when they are imported (as database/sql drivers do).
var DefaultSchemes = NewSchemes()

// NewSchemes returns a table with IMAP's schemes.
func NewSchemes() *Schemes {
	s := &Schemes{}
	imapModes := []ClientAddrMode{ClientAddrID}
	s.Register("imap", Scheme{Protocol: "imap", TLS: TLSNone, Port: "143", ClientAddr: ClientAddrID, ClientAddrModes: imapModes})
	s.Register("imap+starttls", Scheme{Protocol: "imap", TLS: TLSStartTLS, Port: "143", ClientAddr: ClientAddrID, ClientAddrModes: imapModes})
	s.Register("imaps", Scheme{Protocol: "imap", TLS: TLSImplicit, Port: "993", ClientAddr: ClientAddrID, ClientAddrModes: imapModes})
	return s
}

// Register adds or replaces a scheme.
func (s *Schemes) Register(name string, sc Scheme) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Scheme{}
	}
	s.m[strings.ToLower(name)] = sc
}

// RegisterScheme adds a scheme to DefaultSchemes; protocol packages call it
// from init.
func RegisterScheme(name string, sc Scheme) { DefaultSchemes.Register(name, sc) }

// Lookup returns the scheme called name.
func (s *Schemes) Lookup(name string) (Scheme, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sc, ok := s.m[strings.ToLower(name)]
	return sc, ok
}

// name finds the scheme of protocol with tls, for Backend.String.
func (s *Schemes) name(protocol string, tls TLSMode) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	best := ""
	for n, sc := range s.m {
		if sc.Protocol == protocol && sc.TLS == tls && (best == "" || len(n) < len(best)) {
			best = n
		}
	}
	return best
}

// names lists the schemes, for messages.
func (s *Schemes) names() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for n := range s.m {
		out = append(out, n)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// allows reports whether protocol sc takes mode.
func (sc Scheme) allows(mode ClientAddrMode) bool {
	if mode == ClientAddrProxy || mode == ClientAddrNone {
		return true
	}
	for _, m := range sc.ClientAddrModes {
		if m == mode {
			return true
		}
	}
	return false
}

func parseClientAddr(v string) (ClientAddrMode, error) {
	switch m := ClientAddrMode(strings.ToLower(v)); m {
	case ClientAddrID, ClientAddrXCLIENT, ClientAddrProxy, ClientAddrNone:
		return m, nil
	}
	return "", fmt.Errorf("client_addr=%q: want id, xclient, proxy or none", v)
}

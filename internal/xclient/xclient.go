package xclient

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/pipegate/pipegate/internal/ascii"
)

// MaxSessionID is the longest SESSION value XCLIENT keeps; a longer one
// is ignored, as Dovecot does (LOGIN_MAX_SESSION_ID_LEN).
const MaxSessionID = 64

// Attrs are the attributes of XCLIENT a gateway uses.
type Attrs struct {
	Addr netip.AddrPort // ADDR and PORT; Addr invalid when ADDR was not given, port 0 without PORT
	// Local is DESTADDR and DESTPORT, the address the proxy's client
	// connected to; Addr invalid when DESTADDR was not given, port 0
	// without DESTPORT.
	Local   netip.AddrPort
	Session string // SESSION, "" when not given or over MaxSessionID
	TTL     int    // TTL: the hops left; -1 when not given
}

// Parser gathers the attributes both forms share, one at a time in the
// command's order, a later one winning. Its zero value takes Dovecot's
// form of addresses.
type Parser struct {
	// Postfix makes ADDR and DESTADDR Postfix's form: an IPv4 address or
	// "IPV6:" and an IPv6 one (see ParsePostfixAddr).
	Postfix bool

	addr     netip.Addr
	port     uint16
	destAddr netip.Addr
	destPort uint16
	session  string
	ttl      int
	hasTTL   bool
}

// Set takes attribute name (upper case) with its value (decoded): ADDR,
// DESTADDR (an address), PORT, DESTPORT (1 to 65535), SESSION (kept when
// at most MaxSessionID octets) and TTL (an unsigned 32-bit decimal
// number); other names are no business of Set's, it ignores them. The
// error says why value is not valid for name; the command is then to be
// refused whole.
func (p *Parser) Set(name, value string) error {
	var err error
	switch name {
	case "ADDR":
		p.addr, err = p.parseAddr(value)
	case "DESTADDR":
		p.destAddr, err = p.parseAddr(value)
	case "PORT":
		p.port, err = ParsePort(value)
	case "DESTPORT":
		p.destPort, err = ParsePort(value)
	case "SESSION":
		if len(value) <= MaxSessionID {
			p.session = value
		}
	case "TTL":
		var n uint64
		n, err = ParseUint(value, 32)
		p.ttl, p.hasTTL = int(min(n, 1<<31-1)), true
	}
	return err
}

// Unavailable forgets ADDR, PORT, DESTADDR or DESTPORT, for Postfix's
// [UNAVAILABLE]: the proxy does not know it.
func (p *Parser) Unavailable(name string) {
	switch name {
	case "ADDR":
		p.addr = netip.Addr{}
	case "PORT":
		p.port = 0
	case "DESTADDR":
		p.destAddr = netip.Addr{}
	case "DESTPORT":
		p.destPort = 0
	}
}

// Attrs is what the attributes set so far say.
func (p *Parser) Attrs() Attrs {
	x := Attrs{Session: p.session, TTL: -1}
	if p.hasTTL {
		x.TTL = p.ttl
	}
	if p.addr.IsValid() {
		x.Addr = netip.AddrPortFrom(p.addr, p.port)
	}
	if p.destAddr.IsValid() {
		x.Local = netip.AddrPortFrom(p.destAddr, p.destPort)
	}
	return x
}

func (p *Parser) parseAddr(s string) (netip.Addr, error) {
	if p.Postfix {
		return ParsePostfixAddr(s)
	}
	return ParseAddr(s)
}

// ParseDovecot parses the attributes of XCLIENT in Dovecot's form (its
// POP3 and ManageSieve logins' cmd_xclient): space-separated NAME=value,
// names in any case, values as they are (no xtext); a word without "="
// and names other than those Parser.Set takes are ignored. An error
// names the attribute ("XCLIENT TTL: …"), and nothing is to be applied
// (Dovecot answers that the parameters are invalid).
func ParseDovecot(args []string) (Attrs, error) {
	var p Parser
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			continue
		}
		name = ascii.Upper(name) // Dovecot compares names by ASCII case only
		if err := p.Set(name, value); err != nil {
			return Attrs{}, fmt.Errorf("XCLIENT %s: %w", name, err)
		}
	}
	return p.Attrs(), nil
}

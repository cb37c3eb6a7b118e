package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxSessionID is the longest SESSION value XCLIENT keeps; a longer one
// is ignored, as Dovecot does (LOGIN_MAX_SESSION_ID_LEN).
const MaxSessionID = 64

// XClient is what a trusted proxy in front says with XCLIENT: Dovecot's
// ManageSieve extension (Pigeonhole's managesieve-login cmd_xclient),
// which Dovecot's and pipegate's ManageSieve proxies send to a backend
// whose capabilities list "XCLIENT". There is no RFC; its form is
// Pigeonhole's: XCLIENT then atoms NAME=value, names in any case.
type XClient struct {
	Addr    netip.AddrPort // ADDR and PORT; Addr invalid when ADDR was not given, port 0 without PORT
	Session string         // SESSION, "" when not given or over MaxSessionID
	TTL     int            // TTL: the hops left; -1 when not given
}

// ParseXClient parses XCLIENT's arguments. Each must be an atom; ADDR,
// DESTADDR (an IPv4 or IPv6 address), PORT, DESTPORT (1 to 65535) and
// TTL (an unsigned 32-bit decimal number) must be valid when given: else
// a non-fatal *Error says which is not, and nothing is to be applied.
// Other atoms (CLIENT-TRANSPORT, DESTNAME, FORWARD, unknown names) are
// ignored; DESTADDR and DESTPORT are checked but not returned, the
// gateway knows where the client connected.
func ParseXClient(args []Value) (XClient, error) {
	x := XClient{TTL: -1}
	var addr netip.Addr
	var port uint16
	for i, a := range args {
		if a.Kind != KindAtom {
			return XClient{}, refuse("XCLIENT: argument %d is a %s, want an atom NAME=value", i+1, a.Kind)
		}
		name, value, ok := strings.Cut(a.Str, "=")
		if !ok {
			continue
		}
		var err error
		switch upper(name) {
		case "ADDR":
			addr, err = parseXClientAddr(value)
		case "DESTADDR":
			_, err = parseXClientAddr(value)
		case "PORT":
			port, err = parseXClientPort(value)
		case "DESTPORT":
			_, err = parseXClientPort(value)
		case "SESSION":
			if len(value) <= MaxSessionID {
				x.Session = value
			}
		case "TTL":
			var n uint64
			n, err = parseUint(value, 32)
			x.TTL = int(min(n, 1<<31-1))
		}
		if err != nil {
			return XClient{}, refuse("XCLIENT %s: %v", upper(name), err)
		}
	}
	if addr.IsValid() {
		x.Addr = netip.AddrPortFrom(addr, port)
	}
	return x, nil
}

// parseXClientAddr parses an IPv4 or IPv6 address without zone or
// brackets; an IPv4-mapped IPv6 address comes back as IPv4.
func parseXClientAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errors.New("not an IP address")
	}
	return a.Unmap(), nil
}

// parseXClientPort parses a port number from 1 to 65535 (Dovecot's
// net_str2port), in decimal digits only.
func parseXClientPort(s string) (uint16, error) {
	n, err := parseUint(s, 16)
	if err != nil || n == 0 {
		return 0, errors.New("not a port number (1 to 65535)")
	}
	return uint16(n), nil
}

// parseUint parses 1*DIGIT that fits in bits (Dovecot's str_to_uint: no
// sign, no spaces, no overflow).
func parseUint(s string, bits int) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("not a decimal number of %d bits", bits)
	}
	return n, nil
}

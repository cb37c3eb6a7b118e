package xclient

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseAddr parses an address in Dovecot's form: IPv4 or IPv6, without
// zone, brackets or prefix. An IPv4-mapped IPv6 address comes back as
// IPv4.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errors.New("not an IP address")
	}
	return a.Unmap(), nil
}

// ParsePostfixAddr parses an address in Postfix's form: IPv4, or IPv6
// after "IPV6:" (in any case), without zone. An IPv4-mapped IPv6 address
// comes back as IPv4.
func ParsePostfixAddr(s string) (netip.Addr, error) {
	v6 := len(s) > 5 && strings.EqualFold(s[:5], "IPV6:")
	if v6 {
		s = s[5:]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is6() != v6 {
		return netip.Addr{}, errors.New("not an IPv4 address or IPV6: and an IPv6 address")
	}
	return a.Unmap(), nil
}

// ParsePort parses a port number from 1 to 65535 (Dovecot's
// net_str2port), in decimal digits only.
func ParsePort(s string) (uint16, error) {
	n, err := ParseUint(s, 16)
	if err != nil || n == 0 {
		return 0, errors.New("not a port number (1 to 65535)")
	}
	return uint16(n), nil
}

// ParseUint parses 1*DIGIT that fits in bits (Dovecot's str_to_uint: no
// sign, no spaces, no overflow).
func ParseUint(s string, bits int) (uint64, error) {
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

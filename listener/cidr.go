package listener

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseCIDRs parses a list of CIDR prefixes ("10.0.0.0/8", "fd00::/8") or
// plain addresses (taken as /32 or /128). Errors name field and the bad
// entry. IPv4-mapped IPv6 entries are unmapped.
func ParseCIDRs(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		s = strings.TrimSpace(s)
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not an IP address or CIDR prefix: %w", field, i, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), nil
}

// contains reports whether a (unmapped, zone ignored) is in one of the
// prefixes.
func contains(list []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

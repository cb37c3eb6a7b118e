package listener

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCIDRs: a list (entries joined by commas) parses into valid,
// masked, unzoned, unmapped prefixes, each containing its own network
// address and the address it was written with, and written back as text
// each parses to itself; a bad list is refused naming the field, the index
// and the text of its first bad entry.
func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8, 127.0.0.1 ,::1,fd00::/8",
		"192.168.1.7/24",
		"::ffff:10.1.2.3,::ffff:10.0.0.0/104",
		"::ffff:1.2.3.4/95",
		"fe80::1%eth0,fe80::/10",
		"10.0.0.0/8,10.0.0.300",
		"10.0.0.0/33",
		"lb.example.org",
		"0.0.0.0/0,::/0",
		"1.2.3.4/",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		list := strings.Split(joined, ",")
		got, err := ParseCIDRs("trusted_proxies", list)
		if err != nil {
			if got != nil {
				t.Fatalf("%q: %v with %v", list, err, got)
			}
			bad := -1
			for i, s := range list {
				if _, perr := parsePrefix(strings.TrimSpace(s)); perr != nil {
					bad = i
					break
				}
			}
			want := fmt.Sprintf("trusted_proxies[%d]: %s ", bad, strconv.Quote(strings.TrimSpace(list[max(bad, 0)])))
			if bad < 0 || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("%q: error %q, want it to start with %q", list, err, want)
			}
			return
		}
		if len(got) != len(list) {
			t.Fatalf("%q: %d prefixes", list, len(got))
		}
		for i, p := range got {
			a := p.Addr()
			if !p.IsValid() || p != p.Masked() || a.Zone() != "" || a.Is4In6() || !p.Contains(a) {
				t.Fatalf("%q[%d]: prefix %v (valid %v, masked %v)", list, i, p, p.IsValid(), p.Masked())
			}
			s := strings.TrimSpace(list[i])
			written := s
			if at := strings.IndexByte(s, '/'); at >= 0 {
				written = s[:at]
			} else if p.Bits() != a.BitLen() {
				t.Fatalf("%q: plain address taken as %v", s, p)
			}
			if w, err := netip.ParseAddr(written); err == nil && !contains(got[i:i+1], w) {
				t.Fatalf("%q: %v does not contain %v", s, p, w)
			}
			again, err := ParseCIDRs("x", []string{p.String()})
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%q parsed as %v, read back as %v, %v", s, p, again, err)
			}
		}
	})
}

package xclient

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestParseDovecot: Dovecot's form, attribute by attribute; an error
// names the attribute and nothing comes back with it.
func TestParseDovecot(t *testing.T) {
	long := strings.Repeat("s", MaxSessionID+1)
	for _, tc := range []struct {
		args []string
		want Attrs
		err  string
	}{
		{nil, Attrs{TTL: -1}, ""},
		{[]string{"ADDR=10.1.2.3", "PORT=5555", "SESSION=abc", "TTL=3"}, Attrs{Addr: netip.MustParseAddrPort("10.1.2.3:5555"), Session: "abc", TTL: 3}, ""},
		{[]string{"addr=::ffff:10.0.0.1", "Port=1", "ttl=0", "FORWARD=eA==", "junk", "FOO=bar"}, Attrs{Addr: netip.MustParseAddrPort("10.0.0.1:1")}, ""},
		{[]string{"PORT=5555", "DESTADDR=::1", "DESTPORT=143"}, Attrs{Local: netip.MustParseAddrPort("[::1]:143"), TTL: -1}, ""}, // PORT without ADDR
		{[]string{"destaddr=::ffff:192.0.2.9", "ADDR=10.1.2.3"}, Attrs{Addr: netip.MustParseAddrPort("10.1.2.3:0"), Local: netip.MustParseAddrPort("192.0.2.9:0"), TTL: -1}, ""},
		{[]string{"DESTPORT=993"}, Attrs{TTL: -1}, ""}, // DESTPORT without DESTADDR, as PORT without ADDR
		{[]string{"DESTADDR=192.0.2.9", "DESTADDR=192.0.2.10", "DestPort=143"}, Attrs{Local: netip.MustParseAddrPort("192.0.2.10:143"), TTL: -1}, ""},
		{[]string{"ADDR=2001:db8::1", "ADDR=192.0.2.1"}, Attrs{Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0), TTL: -1}, ""},
		{[]string{"SESSION=abc", "SESSION=" + long, "TTL=4294967295"}, Attrs{Session: "abc", TTL: 1<<31 - 1}, ""},
		{[]string{"ADDR=fe80::1%eth0"}, Attrs{}, "XCLIENT ADDR: not an IP address"},
		{[]string{"ADDR=IPV6:::1"}, Attrs{}, "XCLIENT ADDR: not an IP address"},
		{[]string{"ADDR=10.1.2.3", "destaddr=[::1]"}, Attrs{}, "XCLIENT DESTADDR: not an IP address"},
		{[]string{"de\u017ftaddr=[::1]", "\u017fESSION=abc"}, Attrs{TTL: -1}, ""}, // a long s is no "S": unknown names, ignored
		{[]string{"PORT=0"}, Attrs{}, "XCLIENT PORT: not a port number (1 to 65535)"},
		{[]string{"DESTPORT=65536"}, Attrs{}, "XCLIENT DESTPORT: not a port number (1 to 65535)"},
		{[]string{"DESTADDR=192.0.2.9", "DESTPORT=0"}, Attrs{}, "XCLIENT DESTPORT: not a port number (1 to 65535)"},
		{[]string{"DESTADDR=fe80::1%eth0"}, Attrs{}, "XCLIENT DESTADDR: not an IP address"},
		{[]string{"TTL=+1"}, Attrs{}, "XCLIENT TTL: not a decimal number"},
		{[]string{"TTL=4294967296"}, Attrs{}, "XCLIENT TTL: not a decimal number of 32 bits"},
		{[]string{"TTL="}, Attrs{}, "XCLIENT TTL: not a decimal number of 32 bits"},
	} {
		x, err := ParseDovecot(tc.args)
		if x != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("ParseDovecot(%q) = %+v, %v; want %+v, %q", tc.args, x, err, tc.want, tc.err)
		}
	}
}

// TestParserPostfix: Postfix's addresses, and [UNAVAILABLE] forgetting
// what an earlier ADDR or PORT said.
func TestParserPostfix(t *testing.T) {
	p := Parser{Postfix: true}
	for _, a := range [][2]string{{"ADDR", "IPV6:2001:db8::1"}, {"PORT", "25"}, {"LOGIN", "x"}, {"TTL", "2"},
		{"DESTADDR", "IPV6:2001:db8::25"}, {"DESTPORT", "587"}} {
		if err := p.Set(a[0], a[1]); err != nil {
			t.Fatalf("Set(%s, %s): %v", a[0], a[1], err)
		}
	}
	if x, want := p.Attrs(), (Attrs{Addr: netip.MustParseAddrPort("[2001:db8::1]:25"), Local: netip.MustParseAddrPort("[2001:db8::25]:587"), TTL: 2}); x != want {
		t.Fatalf("Attrs() = %+v, want %+v", x, want)
	}
	p.Unavailable("PORT")
	p.Unavailable("DESTPORT")
	if x := p.Attrs(); x.Addr.Port() != 0 || !x.Addr.Addr().IsValid() || x.Local.Port() != 0 || !x.Local.Addr().IsValid() {
		t.Fatalf("after PORT=[UNAVAILABLE] DESTPORT=[UNAVAILABLE]: %+v", x)
	}
	p.Unavailable("ADDR")
	if x := p.Attrs(); x.Addr.IsValid() || !x.Local.Addr().IsValid() || x.TTL != 2 {
		t.Fatalf("after ADDR=[UNAVAILABLE]: %+v", x)
	}
	p.Unavailable("DESTADDR")
	if x := p.Attrs(); x.Local.IsValid() || x.TTL != 2 {
		t.Fatalf("after DESTADDR=[UNAVAILABLE]: %+v", x)
	}
	for _, name := range []string{"ADDR", "DESTADDR"} {
		for _, bad := range []string{"2001:db8::1", "IPV6:10.0.0.1", "ipv6:fe80::1%eth0", "IPV6:"} {
			if err := p.Set(name, bad); err == nil || err.Error() != "not an IPv4 address or IPV6: and an IPv6 address" {
				t.Errorf("Set(%s, %q): %v", name, bad, err)
			}
		}
	}
	if a, err := ParsePostfixAddr("ipv6:::ffff:10.0.0.1"); err != nil || a != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("ParsePostfixAddr of a mapped address: %v, %v", a, err)
	}
}

// FuzzValues: Postfix's form of an address is Dovecot's, with "IPV6:"
// exactly when it is IPv6; numbers are decimal digits only, within their
// bits, as strconv reads them.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "IPV6:::1", "ipv6:::ffff:1.2.3.4", "::1", "fe80::1%x", "65535", "0", "+1", "4294967296", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := ParsePostfixAddr(s); err == nil {
			plain := s
			if len(s) > 5 && strings.EqualFold(s[:5], "IPV6:") {
				plain = s[5:]
			}
			if b, err := ParseAddr(plain); err != nil || a != b || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("%q: Postfix's form %v, Dovecot's %v, %v", s, a, b, err)
			}
		}
		for _, bits := range []int{16, 32} {
			n, err := ParseUint(s, bits)
			m, serr := strconv.ParseUint(s, 10, bits)
			digits := s != "" && strings.Trim(s, "0123456789") == ""
			if (err == nil) != (serr == nil && digits) || err == nil && n != m {
				t.Fatalf("ParseUint(%q, %d) = %d, %v; strconv says %d, %v", s, bits, n, err, m, serr)
			}
		}
		if port, err := ParsePort(s); err == nil && (port == 0 || strconv.Itoa(int(port)) != strings.TrimLeft(s, "0")) {
			t.Fatalf("ParsePort(%q) = %d", s, port)
		}
	})
}

type session struct {
	client, local netip.AddrPort
	ttl           int
}

func (s *session) SetClient(a netip.AddrPort) { s.client = a }
func (s *session) SetLocal(a netip.AddrPort)  { s.local = a }
func (s *session) ProxyTTL() int              { return s.ttl }
func (s *session) SetProxyTTL(n int)          { s.ttl = n }

// TestApply: ADDR replaces the client and DESTADDR the local address
// (each with its port as given: the session decides about port 0), TTL
// only lowers the session's and never below 1; what was not given
// changes nothing.
func TestApply(t *testing.T) {
	was, local := netip.MustParseAddrPort("127.0.0.1:4000"), netip.MustParseAddrPort("127.0.0.2:143")
	for _, tc := range []struct {
		x    Attrs
		want session
	}{
		{Attrs{TTL: -1}, session{was, local, 5}},
		{Attrs{Addr: netip.MustParseAddrPort("10.1.2.3:5555"), TTL: 3}, session{netip.MustParseAddrPort("10.1.2.3:5555"), local, 3}},
		{Attrs{Local: netip.MustParseAddrPort("192.0.2.9:993"), TTL: -1}, session{was, netip.MustParseAddrPort("192.0.2.9:993"), 5}},
		{Attrs{Local: netip.MustParseAddrPort("192.0.2.9:0"), TTL: -1}, session{was, netip.MustParseAddrPort("192.0.2.9:0"), 5}},
		{Attrs{TTL: 9}, session{was, local, 5}},
		{Attrs{TTL: 0}, session{was, local, 1}},
	} {
		s := session{was, local, 5}
		tc.x.Apply(&s)
		if s != tc.want {
			t.Errorf("%+v applied: %+v, want %+v", tc.x, s, tc.want)
		}
	}
}

func TestTrusted(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for addr, want := range map[string]bool{"127.0.0.2": true, "::ffff:127.0.0.1": true, "::1": true, "10.0.0.1": false, "::2": false} {
		if got := Trusted(nets, netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v", addr, got)
		}
	}
	if Trusted(nil, netip.MustParseAddr("127.0.0.1")) {
		t.Error("Trusted with no networks")
	}
}

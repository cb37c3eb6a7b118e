package listener

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/pipe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr []string // substrings
	}{
		{"empty", nil, []string{}, nil},
		{"prefixes and plain IPs", []string{"10.0.0.0/8", " 127.0.0.1 ", "::1", "fd00::/8"}, []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"}, nil},
		{"host bits masked", []string{"192.168.1.7/24"}, []string{"192.168.1.0/24"}, nil},
		{"v4-mapped unmapped", []string{"::ffff:10.1.2.3", "::ffff:10.0.0.0/104"}, []string{"10.1.2.3/32", "10.0.0.0/8"}, nil},
		{"bad entry", []string{"10.0.0.0/8", "10.0.0.300"}, nil, []string{"trusted_proxies[1]", `"10.0.0.300"`}},
		{"bad bits", []string{"10.0.0.0/33"}, nil, []string{"trusted_proxies[0]", "10.0.0.0/33"}},
		{"hostname", []string{"lb.example.org"}, nil, []string{"trusted_proxies[0]", "lb.example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRs("trusted_proxies", tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %v, want error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("[%d] = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestContains(t *testing.T) {
	list, err := ParseCIDRs("x", []string{"10.0.0.0/8", "fe80::/10"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ip   string
		want bool
	}{{"10.1.2.3", true}, {"::ffff:10.1.2.3", true}, {"11.0.0.1", false}, {"fe80::1%eth0", true}, {"fe80::1", true}, {"::1", false}} {
		if got := contains(list, netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("contains(%s) = %v", tt.ip, got)
		}
	}
	if contains(list, netip.Addr{}) {
		t.Error("invalid address trusted")
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func header(t *testing.T, version string, src, dst string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHeader(&b, version, netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHandshakeRoundTrip(t *testing.T) {
	tests := []struct {
		version, src, dst string
	}{
		{"v1", "192.0.2.10:51000", "198.51.100.1:993"},
		{"v2", "192.0.2.10:51000", "198.51.100.1:993"},
		{"v1", "[2001:db8::7]:40000", "[2001:db8::1]:143"},
		{"v2", "[2001:db8::7]:40000", "[2001:db8::1]:143"},
		{"v2", "192.0.2.10:51000", "[2001:db8::1]:143"}, // mixed: sent as IPv6, unmapped on receipt
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.src+" "+tt.dst, func(t *testing.T) {
			lb, raw := tcpPair(t)
			payload := []byte("a1 LOGIN alice secret\r\n")
			// Header and the first client bytes in one segment, as HAProxy does.
			if _, err := lb.Write(append(header(t, tt.version, tt.src, tt.dst), payload...)); err != nil {
				t.Fatal(err)
			}
			p := &ProxyPolicy{Trusted: loopback, Required: true}
			conn, client, local, err := p.Handshake(raw)
			if err != nil {
				t.Fatal(err)
			}
			if client != netip.MustParseAddrPort(tt.src) || local != netip.MustParseAddrPort(tt.dst) {
				t.Fatalf("client %v local %v, want %s %s", client, local, tt.src, tt.dst)
			}
			pc, ok := conn.(*pipe.PrefixConn)
			if !ok {
				t.Fatalf("conn is %T, want *pipe.PrefixConn (bytes past the header were buffered)", conn)
			}
			if _, ok := pc.Conn.(*net.TCPConn); !ok {
				t.Fatalf("PrefixConn wraps %T, want *net.TCPConn", pc.Conn)
			}
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("read %q, %v; want %q", got, err, payload)
			}
			// The rest of the stream comes through, and the deadline was cleared.
			if _, err := lb.Write([]byte("a2 NOOP\r\n")); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || line != "a2 NOOP\r\n" {
				t.Fatalf("next line %q, %v", line, err)
			}
		})
	}
}

func TestHandshakeNoLeftoverReturnsRawConn(t *testing.T) {
	lb, raw := tcpPair(t)
	if _, err := lb.Write(header(t, "v2", "192.0.2.1:1", "192.0.2.2:2")); err != nil {
		t.Fatal(err)
	}
	conn, client, _, err := (&ProxyPolicy{Trusted: loopback}).Handshake(raw)
	if err != nil {
		t.Fatal(err)
	}
	if conn != raw {
		t.Fatalf("conn is %T, want the raw conn itself", conn)
	}
	if client.String() != "192.0.2.1:1" {
		t.Fatal(client)
	}
}

func TestHandshakeRealAddresses(t *testing.T) {
	tests := []struct {
		name   string
		policy *ProxyPolicy
		send   []byte
		want   string // bytes the caller must still read
	}{
		{"nil policy", nil, header2(t), string(header2(t))},
		{"untrusted peer keeps its header unread", &ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Required: true}, header2(t), string(header2(t))},
		{"trusted, no header, not required", &ProxyPolicy{Trusted: loopback}, []byte("* hello\r\n"), "* hello\r\n"},
		{"v2 LOCAL health check", &ProxyPolicy{Trusted: loopback, Required: true}, append(local2(t), "ping"...), "ping"},
		{"v1 UNKNOWN", &ProxyPolicy{Trusted: loopback, Required: true}, []byte("PROXY UNKNOWN\r\nping"), "ping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, raw := tcpPair(t)
			if _, err := lb.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			conn, client, local, err := tt.policy.Handshake(raw)
			if err != nil {
				t.Fatal(err)
			}
			if client.String() != raw.RemoteAddr().String() || local.String() != raw.LocalAddr().String() {
				t.Fatalf("client %v local %v; want the real %v %v", client, local, raw.RemoteAddr(), raw.LocalAddr())
			}
			got := make([]byte, len(tt.want))
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != tt.want {
				t.Fatalf("read %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func header2(t *testing.T) []byte { return header(t, "v2", "192.0.2.1:1000", "192.0.2.2:143") }

func local2(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHeader(&b, "v2", netip.AddrPort{}, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHandshakeRejects(t *testing.T) {
	v2 := header2(t)
	tests := []struct {
		name     string
		required bool
		send     []byte
		want     string
	}{
		{"no header when required", true, []byte("a1 LOGIN x y\r\n"), "missing"},
		{"bad v1", false, []byte("PROXY TCP4 1.2.3.4 nope 1 2\r\n"), "proxyproto"},
		{"v1 without CRLF", false, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "proxyproto"},
		{"v1 too long", false, []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n"), "107"},
		{"v2 bad version", false, append(append([]byte{}, v2[:12]...), 0x31, 0x11, 0, 12), "proxyproto"},
		{"v2 unix family", false, unixHeader(t), "unsupported address family"},
		{"closed before header", true, nil, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, raw := tcpPair(t)
			if _, err := lb.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.send == nil {
				lb.Close()
			}
			p := &ProxyPolicy{Trusted: loopback, Required: tt.required, HeaderTimeout: 10 * time.Second}
			conn, _, _, err := p.Handshake(raw)
			if err == nil {
				t.Fatalf("no error; conn %T", conn)
			}
			if !strings.Contains(err.Error(), raw.RemoteAddr().String()) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q: want the peer %s and %q", err, raw.RemoteAddr(), tt.want)
			}
		})
	}
}

func unixHeader(t *testing.T) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, &net.UnixAddr{Net: "unix", Name: "/a"}, &net.UnixAddr{Net: "unix", Name: "/b"})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandshakeTimeout(t *testing.T) {
	for _, required := range []bool{true, false} {
		lb, raw := tcpPair(t)
		_ = lb
		p := &ProxyPolicy{Trusted: loopback, Required: required, HeaderTimeout: 20 * time.Millisecond}
		conn, client, _, err := p.Handshake(raw) // the peer sends nothing: the deadline ends the wait
		if required {
			if err == nil || !strings.Contains(err.Error(), "none within 20ms") {
				t.Fatalf("required: err = %v", err)
			}
			continue
		}
		if err != nil || conn != raw || client.String() != raw.RemoteAddr().String() {
			t.Fatalf("not required: %T %v %v", conn, client, err)
		}
		// The deadline is cleared: a later read waits for data.
		if _, err := lb.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatalf("read after timeout: %v", err)
		}
	}
}

func TestHandshakeUnixPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lb, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := lb.Write(header2(t)); err != nil {
		t.Fatal(err)
	}
	conn, client, _, err := (&ProxyPolicy{Trusted: loopback}).Handshake(raw)
	if err != nil || conn != raw || client.IsValid() {
		t.Fatalf("untrusted unix peer: %v %v %v", conn, client, err)
	}
	conn, client, _, err = (&ProxyPolicy{TrustUnix: true}).Handshake(raw)
	if err != nil || conn != raw || client.String() != "192.0.2.1:1000" {
		t.Fatalf("trusted unix peer: %v %v %v", conn, client, err)
	}
}

// WriteHeader's output parses with go-proxyproto, as an upstream would.
func TestWriteHeaderParses(t *testing.T) {
	tests := []struct {
		version, src, dst string
		wantV             byte
		wantLocal         bool
	}{
		{"v1", "127.0.0.1:1", "127.0.0.2:2", 1, false},
		{"v2", "127.0.0.1:1", "127.0.0.2:2", 2, false},
		{"v1", "[::1]:1", "[::1]:2", 1, false},
		{"v2", "[::1]:1", "[::1]:2", 2, false},
		{"v1", "", "", 1, true},
		{"v2", "", "", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.src, func(t *testing.T) {
			var src, dst netip.AddrPort
			if tt.src != "" {
				src, dst = netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst)
			}
			var b bytes.Buffer
			if err := WriteHeader(&b, tt.version, src, dst); err != nil {
				t.Fatal(err)
			}
			h, err := proxyproto.Read(bufio.NewReader(&b))
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tt.wantV || h.Command.IsLocal() != tt.wantLocal {
				t.Fatalf("version %d local %v", h.Version, h.Command.IsLocal())
			}
			if tt.wantLocal {
				return
			}
			s, d, ok := h.TCPAddrs()
			if !ok || s.AddrPort() != src || d.AddrPort() != dst {
				t.Fatalf("addresses %v %v, want %v %v", s, d, src, dst)
			}
		})
	}
	if err := WriteHeader(io.Discard, "v3", netip.AddrPort{}, netip.AddrPort{}); err == nil || !strings.Contains(err.Error(), `"v3"`) {
		t.Fatalf("bad version: %v", err)
	}
}

// TestHandshakeTLSFlag: HandshakeTLS reports the TLS a trusted proxy
// terminated (PROXY v2, PP2_TYPE_SSL with PP2_CLIENT_SSL), and nothing
// for a header without it, a v1 header or an untrusted peer's bytes.
func TestHandshakeTLSFlag(t *testing.T) {
	withSSL := func(client byte) []byte {
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 993})
		ssl := append([]byte{client, 0, 0, 0, 0, byte(proxyproto.PP2_SUBTYPE_SSL_VERSION), 0, 7}, "TLSv1.3"...)
		if err := h.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_SSL, Value: ssl}}); err != nil {
			t.Fatal(err)
		}
		b, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		header  []byte
		trusted []netip.Prefix
		want    bool
	}{
		{"v2 client over TLS", withSSL(0x01), loopback, true},
		{"v2 client in plain", withSSL(0x00), loopback, false},
		{"v2 without TLVs", header(t, "v2", "192.0.2.7:5555", "192.0.2.1:993"), loopback, false},
		{"v1", header(t, "v1", "192.0.2.7:5555", "192.0.2.1:993"), loopback, false},
		{"untrusted", withSSL(0x01), nil, false},
	} {
		lb, raw := tcpPair(t)
		if _, err := lb.Write(tc.header); err != nil {
			t.Fatal(err)
		}
		p := &ProxyPolicy{Trusted: tc.trusted, Required: tc.trusted != nil}
		_, _, _, got, err := p.HandshakeTLS(raw)
		if err != nil || got != tc.want {
			t.Errorf("%s: TLS %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

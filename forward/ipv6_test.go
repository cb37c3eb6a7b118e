package forward

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// startOn serves cfg on listen ("[::1]:0" or "unix:/path"); the test is
// skipped where the machine has no such address.
func startOn(t *testing.T, listen string, cfg Config) (string, *logRecorder) {
	t.Helper()
	cfg.Listen = listen
	_, ln, rec, _ := serveListen(t, cfg, Deps{}, t.Skip)
	if strings.HasPrefix(listen, "unix:") {
		return listen, rec
	}
	return ln.Addr().String(), rec
}

// proxyUpstream listens on network/address and hands each connection's
// raw PROXY header (as parsed) to got.
func proxyUpstream(t *testing.T, network, address string) (string, chan *proxyproto.Header) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, address, err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan *proxyproto.Header, 4)
	go acceptHeaders(ln, got)
	if network == "unix" {
		return "unix:" + address, got
	}
	return ln.Addr().String(), got
}

func acceptHeaders(ln net.Listener, got chan *proxyproto.Header) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go readHeader(c, got)
	}
}

func readHeader(c net.Conn, got chan *proxyproto.Header) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	h, err := proxyproto.Read(br)
	if err != nil {
		h = nil
	}
	got <- h
	io.WriteString(c, "ok")
}

func dialAny(t *testing.T, addr string) net.Conn {
	t.Helper()
	network, address := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", p
	}
	c, err := net.DialTimeout(network, address, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nextHeader(t *testing.T, got chan *proxyproto.Header) *proxyproto.Header {
	t.Helper()
	select {
	case h := <-got:
		return h
	case <-time.After(testTimeout):
		t.Fatal("no connection at the upstream")
		return nil
	}
}

// TestV6SendProxy: an IPv6 client of a [::1] forward reaches a [::1]
// upstream, whose PROXY header (v1 and v2) names the client's and the
// listener's IPv6 addresses; the log names the client as [::1]:port.
func TestV6SendProxy(t *testing.T) {
	bothAcceptPaths(t, func(t *testing.T, _ serverStarter) {
		for _, v := range []string{"v1", "v2"} {
			up, got := proxyUpstream(t, "tcp", "[::1]:0")
			goAccept := strings.HasSuffix(t.Name(), "/go")
			addr, rec := startOn(t, "[::1]:0", Config{Upstreams: []string{up}, SendProxy: v, GoAccept: goAccept})
			c := dialAny(t, addr)
			h := nextHeader(t, got)
			if h == nil {
				t.Fatalf("%s: no valid PROXY header", v)
			}
			if h.Command != proxyproto.PROXY || h.TransportProtocol != proxyproto.TCPv6 {
				t.Errorf("%s: header %v %v, want PROXY TCPv6", v, h.Command, h.TransportProtocol)
			}
			if h.SourceAddr.String() != c.LocalAddr().String() || h.DestinationAddr.String() != addr {
				t.Errorf("%s: header %v -> %v, want %v -> %v", v, h.SourceAddr, h.DestinationAddr, c.LocalAddr(), addr)
			}
			c.Close()
			r := rec.wait(t, "connection closed", 1)
			if r["client"] != c.LocalAddr().String() || r["upstream"] != up {
				t.Errorf("%s: log %v", v, r)
			}
		}
	})
}

// TestUnixClientSendProxy: a unix-socket client's PROXY header is
// UNKNOWN (v1) or LOCAL (v2), as documented (HAProxy sends UNKNOWN for v1).
func TestUnixClientSendProxy(t *testing.T) {
	dir := t.TempDir()
	for i, v := range []string{"v1", "v2"} {
		up, got := proxyUpstream(t, "tcp", "[::1]:0")
		sock := filepath.Join(dir, "f"+string(rune('0'+i))+".sock")
		addr, rec := startOn(t, "unix:"+sock, Config{Upstreams: []string{up}, SendProxy: v})
		c := dialAny(t, addr)
		h := nextHeader(t, got)
		if h == nil {
			t.Fatalf("%s: no valid header", v)
		}
		if v == "v1" && h.TransportProtocol != proxyproto.UNSPEC {
			t.Errorf("v1: %v, want UNKNOWN", h.TransportProtocol)
		}
		if v == "v2" && h.Command != proxyproto.LOCAL {
			t.Errorf("v2: %v, want LOCAL", h.Command)
		}
		c.Close()
		if r := rec.wait(t, "connection closed", 1); r["client"] != "unix" {
			t.Errorf("log %v", r)
		}
	}
}

// TestUnixUpstream: a unix: upstream gets the connection and the
// header of an IPv6 client.
func TestUnixUpstream(t *testing.T) {
	bothAcceptPaths(t, func(t *testing.T, _ serverStarter) {
		goAccept := strings.HasSuffix(t.Name(), "/go")
		sock := filepath.Join(t.TempDir(), "up.sock")
		up, got := proxyUpstream(t, "unix", sock)
		addr, rec := startOn(t, "[::1]:0", Config{Upstreams: []string{up}, SendProxy: "v1", GoAccept: goAccept})
		c := dialAny(t, addr)
		h := nextHeader(t, got)
		if h == nil || h.SourceAddr.String() != c.LocalAddr().String() {
			t.Fatalf("header %+v, want source %v", h, c.LocalAddr())
		}
		c.Close()
		if r := rec.wait(t, "connection closed", 1); r["upstream"] != up {
			t.Errorf("log %v", r)
		}
		_ = os.Remove(sock)
	})
}

// TestV6PerIPLimitPer64: behind accept_proxy, two IPv6 clients of
// one /64 share max_conns_per_ip, and an IPv4-mapped client counts as its
// IPv4 address.
func TestV6PerIPLimitPer64(t *testing.T) {
	up := startUpstream(t, nil, func(c net.Conn) { io.WriteString(c, "ok"); io.Copy(io.Discard, c) })
	addr, rec := startOn(t, "[::1]:0", Config{
		Upstreams: []string{up}, MaxConnsPerIP: 1,
		AcceptProxy: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128")},
	})
	hold := func(line string) net.Conn {
		c := dialAny(t, addr)
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := hold("PROXY TCP6 2001:db8:1:2::1 ::1 1000 443\r\n")
	buf := make([]byte, 2)
	first.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("first: %q %v", buf, err)
	}
	second := hold("PROXY TCP6 2001:db8:1:2:ffff::9 ::1 1001 443\r\n")
	second.SetDeadline(time.Now().Add(testTimeout))
	if n, _ := io.ReadFull(second, buf); n != 0 {
		t.Errorf("second client of the same /64 was piped")
	}
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "limit-per-ip" {
		t.Errorf("log %v", r)
	}
	// IPv4 client, then the same as IPv4-mapped in a v2 header.
	third := hold("PROXY TCP4 192.0.2.5 192.0.2.1 1000 443\r\n")
	third.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(third, buf); err != nil {
		t.Fatalf("third: %v", err)
	}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.5"), Port: 1002}, &net.TCPAddr{IP: net.ParseIP("::1"), Port: 443})
	hb, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	fourth := hold(string(hb))
	fourth.SetDeadline(time.Now().Add(testTimeout))
	if n, _ := io.ReadFull(fourth, buf); n != 0 {
		t.Errorf("IPv4-mapped client was not counted as its IPv4 address")
	}
	if r := rec.wait(t, "connection refused", 2); r["reason"] != "limit-per-ip" || r["client"] != "192.0.2.5:1002" {
		t.Errorf("log %v", r)
	}
}

package imap_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route/authhttp"
)

// rawAuthService is an auth_http service on loopback that hands each
// request head, as it came on the wire, to heads and answers OK with
// backend.
type rawAuthService struct {
	url   string
	heads chan string
}

func startRawAuthService(t *testing.T, backend string) *rawAuthService {
	t.Helper()
	host, port, err := net.SplitHostPort(backend)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &rawAuthService{url: "http://" + ln.Addr().String() + "/auth", heads: make(chan string, 8)}
	reply := "HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: " + host + "\r\nAuth-Port: " + port + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	var wg sync.WaitGroup
	wg.Add(1)
	go serveAuthHeads(ln, a.heads, reply, &wg)
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return a
}

// serveAuthHeads answers each connection's one request with reply until
// ln is closed.
func serveAuthHeads(ln net.Listener, heads chan<- string, reply string, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a failure detector only
		r := bufio.NewReader(c)
		var b strings.Builder
		for range 100 {
			line, err := r.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		select {
		case heads <- b.String():
		default:
		}
		_, _ = c.Write([]byte(reply))
		c.Close()
	}
}

// next returns the next request head the service got.
func (a *rawAuthService) next(t *testing.T) string {
	t.Helper()
	select {
	case h := <-a.heads:
		return h
	case <-time.After(10 * time.Second): // a failure detector only
		t.Fatal("the auth service got no request")
		return ""
	}
}

// loginRaw logs in as alice on c (the greeting already read) and logs
// out.
func loginRaw(t *testing.T, c net.Conn, r *lineReader) {
	t.Helper()
	rc := &rawClient{t: t, conn: c, r: r}
	rc.send("a LOGIN alice@a.test apass\r\n")
	if l := rc.expectPrefix("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("LOGIN: %s", l)
	}
	rc.send("b LOGOUT\r\n")
	rc.expectPrefix("b OK")
}

// TestAuthHTTPTLSDetails: an auth_http service behind the IMAP gateway
// gets Auth-SSL: on with Auth-SSL-Protocol and Auth-SSL-Cipher, spelt and
// valued as nginx sends them (OpenSSL's names), for a client on implicit
// TLS 1.3 and one on TLS 1.2 after STARTTLS; none of them for a plain
// client; and Auth-SSL alone when a trusted proxy in front ended the TLS
// (PROXY v2 with its SSL TLV): the gateway then knows no details.
func TestAuthHTTPTLSDetails(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	auth := startRawAuthService(t, be.addr)
	src, err := authhttp.New(authhttp.Config{URL: auth.url, PassPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: src, TLSConfig: pki.server, AllowPlaintextAuth: true}})

	t.Run("implicit TLS 1.3", func(t *testing.T) {
		cfg := pki.client.Clone()
		cfg.MinVersion = tls.VersionTLS13
		tc, err := tls.Dial("tcp", p.tlsAddr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
		r := newLineReader(tc)
		(&rawClient{t: t, conn: tc, r: r}).expectPrefix("* OK ")
		loginRaw(t, tc, r)
		// TLS 1.3 suites: OpenSSL prints the IANA name, as crypto/tls.
		cipher := tls.CipherSuiteName(tc.ConnectionState().CipherSuite)
		if !strings.HasPrefix(cipher, "TLS_") {
			t.Fatalf("TLS 1.3 suite %q", cipher)
		}
		head := auth.next(t)
		for _, want := range []string{"\r\nAuth-SSL: on\r\n", "\r\nAuth-SSL-Protocol: TLSv1.3\r\n", "\r\nAuth-SSL-Cipher: " + cipher + "\r\n"} {
			if !strings.Contains(head, want) {
				t.Errorf("request lacks %q; request head:\n%s", strings.TrimSpace(want), head)
			}
		}
	})

	t.Run("STARTTLS TLS 1.2", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		rc := &rawClient{t: t, conn: c, r: newLineReader(c)}
		rc.expectPrefix("* OK ")
		rc.send("s STARTTLS\r\n")
		rc.expectPrefix("s OK")
		cfg := pki.client.Clone()
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384} // the test CA's keys are ECDSA
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if st := tc.ConnectionState(); st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
			t.Fatalf("negotiated %s %s, want TLS 1.2 with the one suite offered", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		}
		r := newLineReader(tc)
		loginRaw(t, tc, r)
		head := auth.next(t)
		for _, want := range []string{"\r\nAuth-SSL: on\r\n", "\r\nAuth-SSL-Protocol: TLSv1.2\r\n", "\r\nAuth-SSL-Cipher: ECDHE-ECDSA-AES256-GCM-SHA384\r\n"} {
			if !strings.Contains(head, want) {
				t.Errorf("request lacks %q; request head:\n%s", strings.TrimSpace(want), head)
			}
		}
	})

	t.Run("plain", func(t *testing.T) {
		rc := dialRaw(t, p.addr)
		loginRaw(t, rc.conn, rc.r)
		if head := auth.next(t); strings.Contains(strings.ToLower(head), "auth-ssl") {
			t.Errorf("a plain client's request has Auth-SSL headers:\n%s", head)
		}
	})

	t.Run("TLS ended by a trusted proxy", func(t *testing.T) {
		pp := startProxy(t, &imap.Server{Server: gateway.Server{
			Router: src,
			Proxy:  &listener.ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true},
		}})
		c, err := net.Dial("tcp", pp.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 993})
		// PP2_TYPE_SSL: PP2_CLIENT_SSL, verify = 0, a version sub-TLV.
		ssl := append([]byte{0x01, 0, 0, 0, 0, byte(proxyproto.PP2_SUBTYPE_SSL_VERSION), 0, 7}, "TLSv1.3"...)
		if err := h.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_SSL, Value: ssl}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		r := newLineReader(c)
		(&rawClient{t: t, conn: c, r: r}).expectPrefix("* OK ")
		loginRaw(t, c, r)
		head := auth.next(t)
		if !strings.Contains(head, "\r\nAuth-SSL: on\r\n") || !strings.Contains(head, "\r\nClient-IP: 192.0.2.7\r\n") {
			t.Errorf("request lacks Auth-SSL: on or the proxied Client-IP; request head:\n%s", head)
		}
		if strings.Contains(head, "Auth-SSL-") {
			t.Errorf("request has TLS details the gateway cannot know:\n%s", head)
		}
	})
}

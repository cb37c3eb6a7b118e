package authhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
)

// TestTLSHeaders: with Auth-SSL: on go Auth-SSL-Protocol and
// Auth-SSL-Cipher, spelt as nginx spells them and valued as nginx sends
// them (OpenSSL's names), when the request has the details; TLS a proxy
// in front ended (ClientTLS without details) sends Auth-SSL alone, and a
// plain connection none of them.
func TestTLSHeaders(t *testing.T) {
	for _, tc := range []struct {
		name            string
		req             route.Request
		want, forbidden []string
	}{
		{"TLS 1.3", route.Request{ClientTLS: true, ClientTLSVersion: tls.VersionTLS13, ClientTLSCipher: tls.TLS_AES_256_GCM_SHA384},
			[]string{"\r\nAuth-SSL: on\r\n", "\r\nAuth-SSL-Protocol: TLSv1.3\r\n", "\r\nAuth-SSL-Cipher: TLS_AES_256_GCM_SHA384\r\n"}, nil},
		{"TLS 1.2", route.Request{ClientTLS: true, ClientTLSVersion: tls.VersionTLS12, ClientTLSCipher: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
			[]string{"\r\nAuth-SSL: on\r\n", "\r\nAuth-SSL-Protocol: TLSv1.2\r\n", "\r\nAuth-SSL-Cipher: ECDHE-RSA-AES128-GCM-SHA256\r\n"}, nil},
		{"TLS 1.0", route.Request{ClientTLS: true, ClientTLSVersion: tls.VersionTLS10, ClientTLSCipher: tls.TLS_RSA_WITH_AES_128_CBC_SHA},
			[]string{"\r\nAuth-SSL-Protocol: TLSv1\r\n", "\r\nAuth-SSL-Cipher: AES128-SHA\r\n"}, nil},
		{"suite OpenSSL has no name for here", route.Request{ClientTLS: true, ClientTLSVersion: tls.VersionTLS12, ClientTLSCipher: 0xC0A0},
			[]string{"\r\nAuth-SSL-Cipher: 0xC0A0\r\n"}, nil},
		{"TLS ended by a proxy in front", route.Request{ClientTLS: true},
			[]string{"\r\nAuth-SSL: on\r\n"}, []string{"Auth-SSL-", "Auth-Ssl"}},
		{"plain", route.Request{ClientTLSVersion: tls.VersionTLS13, ClientTLSCipher: tls.TLS_AES_128_GCM_SHA256},
			nil, []string{"Auth-SSL", "Auth-Ssl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := requestHead(t, tc.req)
			for _, w := range tc.want {
				if !strings.Contains(head, w) {
					t.Errorf("request lacks %q; request head:\n%s", strings.TrimSpace(w), head)
				}
			}
			for _, f := range tc.forbidden {
				if strings.Contains(head, f) {
					t.Errorf("request has %q; request head:\n%s", f, head)
				}
			}
		})
	}
}

// requestHead sends req to a raw service and returns the request head as
// it went on the wire.
func requestHead(t *testing.T, req route.Request) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	head := make(chan string, 1)
	go serveOneRaw(ln, head)
	s := newSource(t, Config{URL: "http://" + ln.Addr().String() + "/auth"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req.Protocol, req.Account, req.ClientAddr = "imap", "alice@a.test", netip.MustParseAddrPort("192.0.2.7:5555")
	if _, err := s.Lookup(ctx, req); err != nil {
		t.Fatal(err)
	}
	return <-head
}

// TestCipherNamesCoverCryptoTLS: every suite crypto/tls offers has
// OpenSSL's name: TLS 1.3's are their IANA names (OpenSSL prints those),
// the older ones are in the table.
func TestCipherNamesCoverCryptoTLS(t *testing.T) {
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		tls13 := len(cs.SupportedVersions) == 1 && cs.SupportedVersions[0] == tls.VersionTLS13
		_, inTable := opensslCipherNames[cs.ID]
		switch {
		case tls13 && (inTable || sslCipher(cs.ID) != cs.Name):
			t.Errorf("%s (TLS 1.3): named %q, want its IANA name", cs.Name, sslCipher(cs.ID))
		case !tls13 && !inTable:
			t.Errorf("%s: not in opensslCipherNames", cs.Name)
		}
	}
}

// TestCipherNamesAsOpenSSL: the table says what `openssl ciphers
// -stdname` says for each suite it knows (RC4 and 3DES are gone from
// OpenSSL 3's default build; their names are OpenSSL 1.x's).
func TestCipherNamesAsOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatal("openssl not installed (apt-get install -y openssl)")
		}
		t.Skip("openssl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "ciphers", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
	if err != nil {
		t.Fatalf("openssl ciphers: %v", err)
	}
	// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 - ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 Kx=..."
	openssl := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[1] == "-" {
			openssl[f[0]] = f[2]
		}
	}
	if len(openssl) == 0 {
		t.Fatalf("no suites read from openssl ciphers -stdname:\n%s", out)
	}
	checked := 0
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		want, ok := openssl[cs.Name]
		if !ok {
			continue
		}
		checked++
		if got := sslCipher(cs.ID); got != want {
			t.Errorf("%s: named %q, OpenSSL says %q", cs.Name, got, want)
		}
	}
	if checked < 15 {
		t.Errorf("only %d of crypto/tls's suites checked against OpenSSL's names", checked)
	}
}

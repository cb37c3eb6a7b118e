package tlsrec

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestSuitesWithOpenSSL carries on connections made with each TLS 1.3
// suite, against openssl s_client as the peer (Go's client always picks
// AES-128-GCM here).
func TestSuitesWithOpenSSL(t *testing.T) {
	needSupported(t)
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatal("openssl not installed (apt-get install -y openssl)")
		}
		t.Skip("openssl not installed")
	}
	ca := tlstest.NewCA(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}}
	for _, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
		t.Run(suite, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cmd := exec.Command(bin, "s_client", "-tls1_3", "-ciphersuites", suite, "-connect", ln.Addr().String())
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			raw, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(10 * time.Second))
			srv := tls.Server(raw, cfg)
			if err := srv.Handshake(); err != nil {
				t.Fatal(err)
			}
			if got := tls.CipherSuiteName(srv.ConnectionState().CipherSuite); got != suite {
				t.Fatalf("negotiated %s", got)
			}
			st, err := Export(srv)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := st.Seal(nil, []byte("hello from the loop\n"))
			if _, err := raw.Write(out); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewReader(stdout)
			waitLine(t, lines, "hello from the loop")
			if _, err := stdin.Write([]byte("ping from openssl\n")); err != nil {
				t.Fatal(err)
			}
			if got := openLine(t, st, raw); got != "ping from openssl\n" {
				t.Fatalf("opened %q", got)
			}
			// "K" makes s_client send a KeyUpdate asking for ours: the
			// next Seal must answer it, or s_client cannot read on.
			if _, err := stdin.Write([]byte("K\n")); err != nil {
				t.Fatal(err)
			}
			openUntil(t, st, raw, func([]byte, bool) bool { return st.answerUpdate })
			if _, err := stdin.Write([]byte("after the update\n")); err != nil {
				t.Fatal(err)
			}
			if got := openLine(t, st, raw); got != "after the update\n" {
				t.Fatalf("opened %q", got)
			}
			out, _ = st.Seal(nil, []byte("reply under new keys\n"))
			if _, err := raw.Write(out); err != nil {
				t.Fatal(err)
			}
			waitLine(t, lines, "reply under new keys")
		})
	}
}

// waitLine reads s_client's output until a line equal to want.
func waitLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	for range 200 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("s_client output ended before %q: %v", want, err)
		}
		if strings.TrimRight(line, "\r\n") == want {
			return
		}
	}
	t.Fatalf("no line %q from s_client", want)
}

// openLine reads records from raw until a whole line of plaintext.
func openLine(t *testing.T, st *State, raw net.Conn) string {
	t.Helper()
	got, _ := openUntil(t, st, raw, func(got []byte, _ bool) bool { return strings.Contains(string(got), "\n") })
	return string(got)
}

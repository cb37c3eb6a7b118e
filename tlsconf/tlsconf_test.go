package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tlsServer accepts TLS connections on loopback with cfg; each connection
// completes the handshake, writes "x" and waits for the client to close.
type tlsServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startTLS(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{ln: ln}
	s.wg.Add(1)
	go s.acceptLoop(cfg)
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return ln.Addr().String()
}

func (s *tlsServer) acceptLoop(cfg *tls.Config) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveConn(tls.Server(c, cfg))
	}
}

func (s *tlsServer) serveConn(c *tls.Conn) {
	defer s.wg.Done()
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return
	}
	if _, err := c.Write([]byte("x")); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

// dial handshakes with addr, reads the server's byte (so TLS 1.3 session
// tickets are processed) and returns the connection state.
func dial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func copyFile(t *testing.T, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func ticketKeyFile(t *testing.T, keys ...byte) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# pipegate ticket keys\n\n")
	for _, k := range keys {
		b.WriteString(hex.EncodeToString(bytes.Repeat([]byte{k}, 32)) + "\n")
	}
	return writeFile(t, "ticket.keys", []byte(b.String()))
}

func TestLoadServerErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	_, otherKey := ca.Issue(t, "127.0.0.1")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writeFile(t, "garbage.pem", []byte("hello\n"))
	badHex := writeFile(t, "bad.keys", []byte(strings.Repeat("zz", 32)+"\n"))
	short := writeFile(t, "short.keys", []byte("abcd\n"))
	empty := writeFile(t, "empty.keys", []byte("# nothing\n"))
	tests := []struct {
		name  string
		files ServerFiles
		want  []string // substrings of the error
	}{
		{"no cert", ServerFiles{Key: key}, []string{"cert", "no file"}},
		{"no key", ServerFiles{Cert: cert}, []string{"key", "no file", cert}},
		{"missing cert", ServerFiles{Cert: missing, Key: key}, []string{"tls cert", missing}},
		{"missing key", ServerFiles{Cert: cert, Key: missing}, []string{"tls key", missing}},
		{"cert not PEM", ServerFiles{Cert: notPEM, Key: key}, []string{notPEM}},
		{"key does not match", ServerFiles{Cert: cert, Key: otherKey}, []string{cert, otherKey, "does not match"}},
		{"missing client CA", ServerFiles{Cert: cert, Key: key, ClientCA: missing}, []string{"client CA", missing}},
		{"client CA not PEM", ServerFiles{Cert: cert, Key: key, ClientCA: notPEM}, []string{"client CA", notPEM, "no PEM"}},
		{"missing ticket keys", ServerFiles{Cert: cert, Key: key, TicketKeys: missing}, []string{"ticket keys", missing}},
		{"ticket key not hex", ServerFiles{Cert: cert, Key: key, TicketKeys: badHex}, []string{badHex, "line 1"}},
		{"ticket key short", ServerFiles{Cert: cert, Key: key, TicketKeys: short}, []string{short, "line 1", "64 hex"}},
		{"no ticket key", ServerFiles{Cert: cert, Key: key, TicketKeys: empty}, []string{empty, "no key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadServer(tt.files)
			if err == nil {
				t.Fatalf("LoadServer = %v, want error", s)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestServerHandshake(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "imap.test")
	s, err := LoadServer(ServerFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	tests := []struct {
		name    string
		cfg     *tls.Config
		wantErr bool
	}{
		{"by IP", &tls.Config{RootCAs: ca.Pool()}, false},
		{"by name", &tls.Config{RootCAs: ca.Pool(), ServerName: "imap.test"}, false},
		{"wrong name", &tls.Config{RootCAs: ca.Pool(), ServerName: "other.test"}, true},
		{"unknown CA", &tls.Config{RootCAs: tlstest.NewCA(t).Pool()}, true},
		{"TLS 1.2", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}, false},
		{"TLS 1.1 refused", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dial(addr, tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("dial: err = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	cfg := s.Config()
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if s.Config() != cfg {
		t.Error("Config() changed across Reload")
	}
}

func TestReloadPicksUpNewCert(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert1, key1 := ca.Issue(t, "127.0.0.1", "one.test")
	cert2, key2 := ca.Issue(t, "127.0.0.1", "two.test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	copyFile(t, certFile, cert1)
	copyFile(t, keyFile, key1)
	s, err := LoadServer(ServerFiles{Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	cli := &tls.Config{RootCAs: ca.Pool()}
	served := func() string {
		t.Helper()
		st, err := dial(addr, cli)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "127.0.0.1" {
		t.Fatalf("before reload: CN %q", got)
	}
	if got := s.Certificate().Leaf.DNSNames[0]; got != "one.test" {
		t.Fatalf("before reload: Certificate() names %q", got)
	}
	copyFile(t, certFile, cert2)
	copyFile(t, keyFile, key2)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := s.Certificate().Leaf.DNSNames[0]; got != "two.test" {
		t.Fatalf("after reload: Certificate() names %q", got)
	}
	st, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "two.test"})
	if err != nil {
		t.Fatalf("after reload, handshake for the new name: %v", err)
	}
	if got := st.PeerCertificates[0].DNSNames[0]; got != "two.test" {
		t.Fatalf("after reload: served %q", got)
	}

	// A broken file: Reload fails naming it, and the last good cert stays.
	copyFile(t, keyFile, key1) // key no longer matches cert2
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("Reload with mismatched key: err = %v, want one naming %s", err, keyFile)
	}
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "two.test"}); err != nil {
		t.Fatalf("after failed reload, old cert no longer served: %v", err)
	}
}

func TestClientCA(t *testing.T) {
	ca := tlstest.NewCA(t)
	clientCA := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	s, err := LoadServer(ServerFiles{Cert: cert, Key: key, ClientCA: clientCA.CertFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	tests := []struct {
		name    string
		certs   []tls.Certificate
		wantErr bool
	}{
		{"no client cert", nil, true},
		{"cert from client CA", []tls.Certificate{clientCA.ClientCert(t, "alice")}, false},
		{"cert from another CA", []tls.Certificate{ca.ClientCert(t, "mallory")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), Certificates: tt.certs})
			if (err != nil) != tt.wantErr {
				t.Fatalf("dial: err = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil && !st.HandshakeComplete {
				t.Fatal("handshake not complete")
			}
		})
	}
}

func TestTicketKeysSharedBetweenInstances(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	shared := ticketKeyFile(t, 1, 2)
	rotated := ticketKeyFile(t, 3, 1) // new key first, old one still accepted
	other := ticketKeyFile(t, 4)
	tests := []struct {
		name       string
		version    uint16
		first      string // ticket key file of the first instance
		second     string // ... and of the second
		wantResume bool
	}{
		{"TLS 1.3 shared", tls.VersionTLS13, shared, shared, true},
		{"TLS 1.2 shared", tls.VersionTLS12, shared, shared, true},
		{"TLS 1.3 rotated, old key kept", tls.VersionTLS13, shared, rotated, true},
		{"TLS 1.3 different keys", tls.VersionTLS13, shared, other, false},
		{"TLS 1.2 different keys", tls.VersionTLS12, shared, other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s1, err := LoadServer(ServerFiles{Cert: cert, Key: key, TicketKeys: tt.first})
			if err != nil {
				t.Fatal(err)
			}
			s2, err := LoadServer(ServerFiles{Cert: cert, Key: key, TicketKeys: tt.second})
			if err != nil {
				t.Fatal(err)
			}
			addr1, addr2 := startTLS(t, s1.Config()), startTLS(t, s2.Config())
			cli := &tls.Config{
				RootCAs:            ca.Pool(),
				ServerName:         "127.0.0.1",
				MaxVersion:         tt.version,
				ClientSessionCache: tls.NewLRUClientSessionCache(8),
			}
			st, err := dial(addr1, cli)
			if err != nil {
				t.Fatal(err)
			}
			if st.DidResume {
				t.Fatal("first handshake resumed")
			}
			st, err = dial(addr2, cli)
			if err != nil {
				t.Fatal(err)
			}
			if st.DidResume != tt.wantResume {
				t.Fatalf("second instance: DidResume = %v, want %v", st.DidResume, tt.wantResume)
			}
			if st.Version != tt.version {
				t.Fatalf("version %x, want %x", st.Version, tt.version)
			}
		})
	}
}

func TestResumeSurvivesReloadWithoutTicketFile(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	s, err := LoadServer(ServerFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	cli := &tls.Config{RootCAs: ca.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	if _, err := dial(addr, cli); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	st, err := dial(addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	if !st.DidResume {
		t.Fatal("session not resumed after a reload")
	}
}

func TestParseTicketKeys(t *testing.T) {
	k1 := strings.Repeat("01", 32)
	k2 := strings.Repeat("Ab", 32)
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{"one", k1 + "\n", 1, ""},
		{"no final newline", k1, 1, ""},
		{"two with comments and blanks", "# keys\n\n" + k1 + "\r\n  " + k2 + "  \n", 2, ""},
		{"empty", "", 0, "no key"},
		{"too long", k1 + "00\n", 0, "line 1"},
		{"bad hex on line 3", k1 + "\n\n" + strings.Repeat("g", 64), 0, "line 3"},
		{"too many", strings.Repeat(k1+"\n", maxTicketKeys+1), 0, "more than"},
		{"a key of zeros", k1 + "\n" + strings.Repeat("00", 32) + "\n", 0, "line 2: a key of zeros"},
		{"a line of 100,000 characters", "#\n" + strings.Repeat("a", 100_000), 0, "line 2: want 64 hex characters (32 bytes), got 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseTicketKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tt.want {
				t.Fatalf("got %d keys, want %d", len(keys), tt.want)
			}
			if keys[0][0] != 0x01 {
				t.Fatalf("first key starts %#x", keys[0][0])
			}
		})
	}
}

func TestLoadClient(t *testing.T) {
	ca := tlstest.NewCA(t)
	clientCA := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "backend.test")
	ccert, ckey := clientCA.ClientCertFiles(t, "pipegate")
	s, err := LoadServer(ServerFiles{Cert: cert, Key: key, ClientCA: clientCA.CertFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	missing := filepath.Join(t.TempDir(), "missing.crt")
	tests := []struct {
		name      string
		files     ClientFiles
		loadErr   string // substring; "" when LoadClient must succeed
		dialError bool
	}{
		{"CA and client cert", ClientFiles{CA: ca.CertFile(t), Cert: ccert, Key: ckey}, "", false},
		{"server name", ClientFiles{CA: ca.CertFile(t), Cert: ccert, Key: ckey, ServerName: "backend.test"}, "", false},
		{"wrong server name", ClientFiles{CA: ca.CertFile(t), Cert: ccert, Key: ckey, ServerName: "x.test"}, "", true},
		{"system roots do not know the test CA", ClientFiles{Cert: ccert, Key: ckey}, "", true},
		{"insecure", ClientFiles{InsecureSkipVerify: true, Cert: ccert, Key: ckey}, "", false},
		{"no client cert", ClientFiles{CA: ca.CertFile(t)}, "", true},
		{"cert without key", ClientFiles{Cert: ccert}, ccert, false},
		{"key without cert", ClientFiles{Key: ckey}, ckey, false},
		{"missing CA", ClientFiles{CA: missing}, missing, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadClient(tt.files)
			if tt.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
					t.Fatalf("LoadClient err = %v, want one naming %q", err, tt.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x", cfg.MinVersion)
			}
			if tt.files.CA == "" && cfg.RootCAs != nil {
				t.Error("RootCAs set without a CA file; want system roots")
			}
			_, err = dial(addr, cfg)
			if (err != nil) != tt.dialError {
				t.Fatalf("dial: err = %v, want error: %v", err, tt.dialError)
			}
			var verr *tls.CertificateVerificationError
			if tt.files.CA == "" && !tt.files.InsecureSkipVerify && !errors.As(err, &verr) {
				t.Errorf("want a certificate verification error, got %v", err)
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	cert, err := SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf == nil || len(cert.Leaf.IPAddresses) != 1 || cert.Leaf.DNSNames[0] != "localhost" {
		t.Fatalf("leaf: %+v", cert.Leaf)
	}
	addr := startTLS(t, StaticServer(cert).Config())
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if _, err := dial(addr, &tls.Config{RootCAs: pool, ServerName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := dial(addr, &tls.Config{RootCAs: pool, ServerName: "other"}); err == nil {
		t.Error("handshake for a name not in the certificate succeeded")
	}
	def, err := SelfSigned()
	if err != nil || def.Leaf.DNSNames[0] != "localhost" {
		t.Fatalf("SelfSigned(): %v %v", def.Leaf.DNSNames, err)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/bench/internal/mailproto"
	"github.com/pipegate/pipegate/internal/freeport"
	"github.com/pipegate/pipegate/internal/testenv"
)

// dovecotTuning makes an instance serve many sessions from few login
// processes (Dovecot's "high-performance" login mode) for each protocol it
// serves, and lets one user hold many sessions from one address.
func dovecotTuning(protocols ...string) string {
	var b strings.Builder
	b.WriteString("default_client_limit = 8192\nmail_max_userip_connections = 100000\n")
	login := map[string]string{
		testenv.IMAP: "imap-login", testenv.POP3: "pop3-login",
		testenv.Sieve: "managesieve-login", testenv.Submission: "submission-login",
	}
	mail := map[string]string{
		testenv.IMAP: "imap", testenv.POP3: "pop3",
		testenv.Sieve: "managesieve", testenv.Submission: "submission",
	}
	for _, p := range protocols {
		fmt.Fprintf(&b, `service %s {
  service_count = 0
  process_min_avail = 1
  process_limit = 8
  client_limit = 4096
}
service %s {
  process_limit = 4096
}
`, login[p], mail[p])
	}
	return b.String()
}

// proxyPassdb is the passdb of Dovecot's proxy mode: a passwd-file per
// service (%s: pop3, submission) whose only line sends the user to that
// protocol's port of the backend. The password is checked here (an empty
// one with nopassword=y is refused by passwd-file) and passed on.
func proxyPassdb(dir, user, pass string, ports map[string]string) (string, error) {
	for service, port := range ports {
		line := fmt.Sprintf("%s:{PLAIN}%s::::::proxy=y host=127.0.0.1 port=%s\n", user, pass, port)
		if err := os.WriteFile(filepath.Join(dir, "proxy-"+service), []byte(line), 0o644); err != nil {
			return "", err
		}
	}
	return "passdb {\n  driver = passwd-file\n  args = username_format=%u " + dir + "/proxy-%s\n}", nil
}

// pgListener is one listener of the pipegate under test.
type pgListener = mailproto.Listener

// pipegate is a running `pipegate mail` and its listening addresses.
type pipegate struct {
	*benchproc.Process
	addrs map[pgListener]string
	dir   string
}

// startPipegate runs `pipegate mail` in front of backend (plain on
// every protocol, client address by XCLIENT or ID) with mailproto.Listeners.
func startPipegate(ctx context.Context, bin, dir, certFile, keyFile string, backend *testenv.Dovecot) (*pipegate, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	routes := filepath.Join(dir, "routes.yaml")
	err := os.WriteFile(routes, []byte(fmt.Sprintf("default: [imap://%s, pop3://%s, sieve://%s, submission://%s]\n",
		backend.Addr, backend.POP3Addr, backend.SieveAddr, backend.SubmissionAddr)), 0o644)
	if err != nil {
		return nil, err
	}
	pg := &pipegate{addrs: map[pgListener]string{}, dir: dir}
	var listen strings.Builder
	for _, l := range mailproto.Listeners {
		addr, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		pg.addrs[l] = addr
		fmt.Fprintf(&listen, "  - addr: %s\n    protocol: %s\n    tls: %t\n", addr, l.Proto, l.TLS)
	}
	config := filepath.Join(dir, "pipegate.yaml")
	err = os.WriteFile(config, []byte(fmt.Sprintf(`listen:
%stls:
  cert: %s
  key: %s
routes_file: %s
hostname: pipegate.test
allow_plaintext_auth: true
max_prelogin_connections_per_ip: 0 # every client comes from 127.0.0.1
drain_timeout: 2s
log:
  level: warn
`, listen.String(), certFile, keyFile, routes)), 0o644)
	if err != nil {
		return nil, err
	}
	listening := make([]string, 0, len(pg.addrs))
	for _, a := range pg.addrs {
		listening = append(listening, a)
	}
	pg.Process, err = benchproc.Start(ctx, benchproc.Server{
		Name: "pipegate", Argv: []string{bin, "mail", "--config", config},
		Log: filepath.Join(dir, "pipegate.log"), Listen: listening,
	})
	if err != nil {
		return nil, err
	}
	return pg, nil
}

// target is the way to pipegate's listener of proto with mode.
func (pg *pipegate) target(proto string, mode tlsMode) target {
	return target{name: "pipegate", proto: proto, addr: pg.addrs[pgListener{Proto: proto, TLS: mode == implicitTLS}], tls: mode}
}

// writeCert writes a self-signed RSA-2048 certificate for 127.0.0.1 and
// localhost, shared by every server (the usual key of mail servers, and
// the costlier handshake of the two kinds).
func writeCert(dir string) (certFile, keyFile string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"pipegate mailbench"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("certificate key: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

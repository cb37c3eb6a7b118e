// Package tlstest makes a throw-away PKI for tests: a CA, server
// certificates for loopback hosts and client certificates for mTLS.
//
// Usage:
//
//	ca := tlstest.NewCA(t)
//	certFile, keyFile := ca.Issue(t, "127.0.0.1", "localhost")
//	srv, _ := tlsconf.LoadServer(tlsconf.ServerFiles{Cert: certFile, Key: keyFile})
//	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
//	// or tlsconf.LoadClient(tlsconf.ClientFiles{CA: ca.CertFile(t)})
//
// Keys are ECDSA P-256, so making a CA and a few certificates costs
// milliseconds. Files are written in t.TempDir() and vanish with the test.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	CertPEM []byte            // the CA certificate, PEM encoded
	Cert    *x509.Certificate // the CA certificate, parsed
	Key     *ecdsa.PrivateKey

	serial atomic.Int64
}

// NewCA makes a new CA valid from an hour ago for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pipegate test CA", Organization: []string{"pipegate tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse CA certificate: %v", err)
	}
	ca := &CA{CertPEM: pemCert(der), Cert: cert, Key: key}
	ca.serial.Store(1)
	return ca
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertFile writes the CA certificate (PEM) into t.TempDir() and returns its path.
func (ca *CA) CertFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "ca-*.crt", ca.CertPEM)
}

// IssueCert makes a server certificate for hosts (IP addresses or DNS
// names), the first being the common name.
func (ca *CA) IssueCert(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	cert, _, _ := ca.issue(t, "", hosts)
	return cert
}

// Issue makes a server certificate for hosts (IP addresses such as
// 127.0.0.1, or DNS names) and writes certificate and key (PEM) into
// t.TempDir().
func (ca *CA) Issue(t testing.TB, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	_, certPEM, keyPEM := ca.issue(t, "", hosts)
	return writeFile(t, "server-*.crt", certPEM), writeFile(t, "server-*.key", keyPEM)
}

// IssueExpired is Issue for a certificate that expired a day ago.
func (ca *CA) IssueExpired(t testing.TB, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	_, certPEM, keyPEM := ca.issueValid(t, "", hosts, time.Now().Add(-72*time.Hour), time.Now().Add(-24*time.Hour))
	return writeFile(t, "server-*.crt", certPEM), writeFile(t, "server-*.key", keyPEM)
}

// ClientCert makes a client certificate with common name cn.
func (ca *CA) ClientCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	cert, _, _ := ca.issue(t, cn, nil)
	return cert
}

// ClientCertFiles is ClientCert written to files in t.TempDir().
func (ca *CA) ClientCertFiles(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	_, certPEM, keyPEM := ca.issue(t, cn, nil)
	return writeFile(t, "client-*.crt", certPEM), writeFile(t, "client-*.key", keyPEM)
}

// issue makes a leaf: a client certificate when cn != "", else a server
// certificate for hosts.
func (ca *CA) issue(t testing.TB, cn string, hosts []string) (cert tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	return ca.issueValid(t, cn, hosts, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// issueValid is issue for a certificate valid from notBefore to notAfter.
func (ca *CA) issueValid(t testing.TB, cn string, hosts []string, notBefore, notAfter time.Time) (cert tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if cn != "" {
		tmpl.Subject = pkix.Name{CommonName: cn}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		if len(hosts) > 0 {
			tmpl.Subject = pkix.Name{CommonName: hosts[0]}
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatalf("tlstest: create certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: marshal key: %v", err)
	}
	certPEM = pemCert(der)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("tlstest: key pair: %v", err)
	}
	return cert, certPEM, keyPEM
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return key
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t testing.TB, pattern string, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), pattern)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	name := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		t.Fatalf("tlstest: write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("tlstest: close %s: %v", name, err)
	}
	return filepath.Clean(name)
}

package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestIssueVerifies(t *testing.T) {
	ca := NewCA(t)
	certFile, keyFile := ca.Issue(t, "127.0.0.1", "::1", "imap.test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "imap.test"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool()}); err == nil {
		t.Error("verified for a host not in the certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "imap.test", Roots: NewCA(t).Pool()}); err == nil {
		t.Error("verified against another CA")
	}

	pem, err := os.ReadFile(ca.CertFile(t))
	if err != nil || string(pem) != string(ca.CertPEM) {
		t.Fatalf("CertFile content differs: %v", err)
	}

	cc := ca.ClientCert(t, "alice")
	cl, _ := x509.ParseCertificate(cc.Certificate[0])
	if _, err := cl.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || cl.Subject.CommonName != "alice" {
		t.Fatalf("client cert: %v %s", err, cl.Subject.CommonName)
	}
}

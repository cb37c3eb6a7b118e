package tlsconf

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

// KeyPair names a PEM certificate chain (leaf first) and the PEM private
// key of its leaf.
type KeyPair struct {
	Cert, Key string
}

// PairError is a problem with one file of a KeyPair.
type PairError struct {
	Which string // "cert" or "key": the file at fault
	File  string
	Err   error
}

func (e *PairError) Error() string {
	if strings.Contains(e.Err.Error(), e.File) { // "open FILE: ..."
		return "tls " + e.Which + ": " + e.Err.Error()
	}
	return "tls " + e.Which + " " + e.File + ": " + e.Err.Error()
}
func (e *PairError) Unwrap() error { return e.Err }

// Load reads the pair and checks that the key belongs to the leaf. Errors
// are *PairError, naming the file at fault: the certificate when it holds
// no parsable certificate, else the key.
func (p KeyPair) Load() (tls.Certificate, error) {
	certPEM, err := cfgfile.Read(p.Cert, cfgfile.Small)
	if err != nil {
		return tls.Certificate{}, &PairError{Which: "cert", File: p.Cert, Err: err}
	}
	if err := checkChainPEM(certPEM); err != nil {
		return tls.Certificate{}, &PairError{Which: "cert", File: p.Cert, Err: err}
	}
	keyPEM, err := cfgfile.Read(p.Key, cfgfile.Small)
	if err != nil {
		return tls.Certificate{}, &PairError{Which: "key", File: p.Key, Err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil { // the chain parsed: the key is at fault
		return tls.Certificate{}, &PairError{Which: "key", File: p.Key, Err: fmt.Errorf("%w (certificate %s)", err, p.Cert)}
	}
	if cert.Leaf == nil { // x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, &PairError{Which: "cert", File: p.Cert, Err: err}
		}
	}
	if err := signFast(&cert); err != nil {
		return tls.Certificate{}, &PairError{Which: "key", File: p.Key, Err: err}
	}
	return cert, nil
}

// checkChainPEM checks that data holds at least one certificate and that
// every CERTIFICATE block parses.
func checkChainPEM(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue // a combined file: the key is checked with the key
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate found")
	}
	return nil
}

// keyRank orders certificates by the cost of their signature: crypto/tls
// serves the first certificate a client supports, so clients that accept
// ECDSA (or Ed25519) get it, and RSA-only clients still get RSA. Signing
// with RSA-2048 costs milliseconds, with ECDSA P-256 tens of microseconds.
func keyRank(c *tls.Certificate) int {
	switch c.Leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return 0
	case ed25519.PublicKey:
		return 1
	case *rsa.PublicKey:
		return 2
	}
	return 3
}

// servedCert is a loaded certificate and its description.
type servedCert struct {
	cert tls.Certificate
	info CertInfo
}

// orderCerts sorts certs cheapest signature first, keeping the given order
// among keys of one kind.
func orderCerts(certs []servedCert) {
	slices.SortStableFunc(certs, func(a, b servedCert) int { return cmp.Compare(keyRank(&a.cert), keyRank(&b.cert)) })
}

// pickCertificate is GetCertificate for several certificates, called when
// the client sent a server name. It serves what crypto/tls would (the
// first certificate valid for the name that the client supports), and when
// none is valid for the name, the first one the client supports at all
// (as without a name), rather than crypto/tls's Certificates[0], an ECDSA
// certificate that an RSA-only client could not use.
func pickCertificate(certs []tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		for i := range certs {
			if hello.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		anyName := *hello
		anyName.ServerName = ""
		for i := range certs {
			if anyName.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return nil, nil // crypto/tls falls back to Certificates[0]
	}
}

// CertInfo describes a served certificate, for logs.
type CertInfo struct {
	File      string // the certificate file
	Subject   string // of the leaf: "CN=imap.example.com,O=Example"
	Names     []string
	KeyType   string // "ECDSA P-256", "RSA 2048", "Ed25519"
	SignedBy  string // RSA keys: RSASigner()
	NotBefore time.Time
	NotAfter  time.Time
}

// String is "ECDSA P-256 CN=imap.example.com (imap.example.com,
// mail.example.com; until 2027-03-01)" (for RSA keys followed by
// "; signed by crypto/rsa" or by libcrypto's version), with "EXPIRED" or "NOT YET VALID"
// when the certificate is not valid now.
func (c CertInfo) String() string {
	state := "until " + c.NotAfter.UTC().Format(time.DateOnly)
	now := time.Now()
	switch {
	case now.After(c.NotAfter):
		state = "EXPIRED " + c.NotAfter.UTC().Format(time.DateTime)
	case now.Before(c.NotBefore):
		state = "NOT YET VALID, from " + c.NotBefore.UTC().Format(time.DateTime)
	}
	if c.SignedBy != "" {
		state += "; signed by " + c.SignedBy
	}
	return fmt.Sprintf("%s %s (%s; %s)", c.KeyType, c.Subject, strings.Join(c.Names, ", "), state)
}

// Valid reports whether now lies within the certificate's validity.
func (c CertInfo) Valid(now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}

func describe(file string, leaf *x509.Certificate) CertInfo {
	info := CertInfo{File: file, Subject: leaf.Subject.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	info.Names = append(info.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		info.KeyType = "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		info.KeyType = fmt.Sprintf("RSA %d", k.N.BitLen())
		info.SignedBy = RSASigner()
	case ed25519.PublicKey:
		info.KeyType = "Ed25519"
	default:
		info.KeyType = fmt.Sprintf("%T", k)
	}
	return info
}

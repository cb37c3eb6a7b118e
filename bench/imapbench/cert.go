package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 and localhost, signed by its
// own key of keyType (ecdsa-p256 or rsa2048).
func selfSigned(keyType string) (tls.Certificate, error) {
	var key crypto.Signer
	var err error
	switch keyType {
	case "ecdsa-p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: key type %q: want ecdsa-p256 or rsa2048", keyType)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: generate %s key: %w", keyType, err)
	}
	usage := x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	if keyType == "rsa2048" {
		usage |= x509.KeyUsageKeyEncipherment // TLS 1.2 RSA key exchange, if a peer picks it
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"pipegate imapbench"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

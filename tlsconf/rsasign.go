package tlsconf

import (
	"crypto/rsa"
	"crypto/tls"

	"github.com/pipegate/pipegate/tlsconf/internal/osslrsa"
)

// RSASigner names what signs handshakes with an RSA certificate key in
// this binary: OpenSSL's libcrypto ("OpenSSL 3.0.19 1 Jul 2025") in a
// binary built with the build tag openssl, which signs RSA-2048 about
// three times faster on x86-64, else "crypto/rsa".
func RSASigner() string {
	if osslrsa.Available {
		return osslrsa.Version()
	}
	return "crypto/rsa"
}

// signFast gives an RSA certificate key to libcrypto to sign with, where
// the binary has it (see RSASigner); other keys stay as they are.
func signFast(c *tls.Certificate) error {
	k, ok := c.PrivateKey.(*rsa.PrivateKey)
	if !ok || !osslrsa.Available {
		return nil
	}
	s, err := osslrsa.New(k)
	if err != nil {
		return err
	}
	c.PrivateKey = s
	return nil
}

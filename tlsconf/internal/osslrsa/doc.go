// Package osslrsa signs with an RSA private key through OpenSSL's
// libcrypto, for TLS servers whose certificate has an RSA key: on x86-64
// OpenSSL 3 signs RSA-2048 three to four times faster than crypto/rsa, and
// that signature is most of the CPU a full TLS handshake costs the server.
//
// It is built only with the build tag openssl (and cgo, and libssl-dev's
// headers); without it, New reports ErrUnavailable and callers keep
// crypto/rsa. A Signer is a crypto.Signer that tls.Certificate.PrivateKey
// can hold:
//
//	s, err := osslrsa.New(key) // key *rsa.PrivateKey
//	if err == nil {
//		cert.PrivateKey = s // TLS handshakes now sign through libcrypto
//	}
//
// Signing is RSASSA-PSS with a salt as long as the digest (what TLS 1.3
// asks for) or PKCS #1 v1.5 (TLS 1.2), with SHA-256, SHA-384 or SHA-512;
// any other request is signed by crypto/rsa with the same key. OpenSSL
// draws the salt and the blinding from its own random generator.
package osslrsa

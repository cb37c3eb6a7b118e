package osslrsa

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"io"
)

// ErrUnavailable is New's error in a binary built without OpenSSL (no
// openssl build tag, or no cgo).
var ErrUnavailable = errors.New("osslrsa: this binary was built without OpenSSL (build tag openssl)")

// Signer signs with an RSA key through libcrypto; see the package doc.
// It is safe for concurrent use.
type Signer struct {
	key *rsa.PrivateKey
	k   *osslKey // nil: every request goes to crypto/rsa
}

// Public returns the key's public half.
func (s *Signer) Public() crypto.PublicKey { return &s.key.PublicKey }

// Sign signs digest, a hash made with opts.HashFunc(): through libcrypto
// where it can (PSS with the salt as long as the digest, or PKCS #1 v1.5,
// with SHA-256/384/512), else with crypto/rsa. rand is used only by
// crypto/rsa; libcrypto draws from its own generator.
func (s *Signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if s.k != nil {
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength == rsa.PSSSaltLengthEqualsHash || pss.SaltLength == pss.HashFunc().Size() {
				if sig, ok, err := s.k.sign(pss.HashFunc(), true, digest); ok {
					return sig, err
				}
			}
		} else if sig, ok, err := s.k.sign(opts.HashFunc(), false, digest); ok {
			return sig, err
		}
	}
	return s.key.Sign(rand, digest, opts)
}

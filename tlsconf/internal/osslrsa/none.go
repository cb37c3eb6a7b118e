//go:build !openssl || !cgo

package osslrsa

import (
	"crypto"
	"crypto/rsa"
)

// Available reports whether this binary signs through libcrypto.
const Available = false

// Version is the libcrypto in use: none in this build.
func Version() string { return "" }

// New reports ErrUnavailable: this binary was built without OpenSSL.
func New(key *rsa.PrivateKey) (*Signer, error) { return nil, ErrUnavailable }

type osslKey struct{}

func (*osslKey) sign(crypto.Hash, bool, []byte) ([]byte, bool, error) { return nil, false, nil }

package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// suite is a TLS 1.3 cipher suite: its AEAD and its hash.
type suite struct {
	id     uint16
	keyLen int
	hash   func() hash.Hash
	aead   func(key []byte) (cipher.AEAD, error)
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	zeroPointee(b) // NewGCM keeps a copy of b's key schedule: wipe this one now
	return a, err
}

func suiteByID(id uint16) (*suite, error) {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return &suite{id: id, keyLen: 16, hash: sha256.New, aead: aesGCM}, nil
	case tls.TLS_AES_256_GCM_SHA384:
		return &suite{id: id, keyLen: 32, hash: sha512.New384, aead: aesGCM}, nil
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return &suite{id: id, keyLen: chacha20poly1305.KeySize, hash: sha256.New, aead: chacha20poly1305.New}, nil
	}
	return nil, fmt.Errorf("tlsrec: %s: %w", tls.CipherSuiteName(id), ErrSuite)
}

// expandLabel is HKDF-Expand-Label from RFC 8446, section 7.1, with an
// empty context.
func (s *suite) expandLabel(secret []byte, label string, length int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // context: empty
	return hkdf.Expand(s.hash, secret, string(info), length)
}

// nextSecret is application_traffic_secret_N+1 (RFC 8446, section 7.2).
func (s *suite) nextSecret(secret []byte) ([]byte, error) {
	return s.expandLabel(secret, "traffic upd", s.hash().Size())
}

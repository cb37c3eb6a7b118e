package osslrsa

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newOrSkip returns a Signer, or skips where the build has no OpenSSL
// after checking that New says so.
func newOrSkip(t testing.TB, k *rsa.PrivateKey) *Signer {
	t.Helper()
	s, err := New(k)
	if !Available {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("built without OpenSSL: New: %v, want ErrUnavailable", err)
		}
		t.Skip("built without the openssl tag: go test -tags openssl")
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignVerifies: every kind of signature libcrypto makes verifies with
// crypto/rsa, a changed digest does not, and PSS signatures differ each
// time (a random salt).
func TestSignVerifies(t *testing.T) {
	k := testKey(t)
	s := newOrSkip(t, k)
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		hh := h.New()
		hh.Write([]byte("transcript"))
		digest := hh.Sum(nil)
		pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
		sig1, err := s.Sign(rand.Reader, digest, pss)
		if err != nil {
			t.Fatalf("%v PSS: %v", h, err)
		}
		if err := rsa.VerifyPSS(&k.PublicKey, h, digest, sig1, pss); err != nil {
			t.Fatalf("%v PSS: does not verify: %v", h, err)
		}
		sig2, _ := s.Sign(rand.Reader, digest, pss)
		if string(sig1) == string(sig2) {
			t.Fatalf("%v PSS: two signatures are equal: no random salt", h)
		}
		sig, err := s.Sign(rand.Reader, digest, h)
		if err != nil {
			t.Fatalf("%v PKCS #1 v1.5: %v", h, err)
		}
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, h, digest, sig); err != nil {
			t.Fatalf("%v PKCS #1 v1.5: does not verify: %v", h, err)
		}
		digest[0] ^= 1
		if rsa.VerifyPKCS1v15(&k.PublicKey, h, digest, sig) == nil {
			t.Fatalf("%v: a signature verifies for another digest", h)
		}
		if _, err := s.Sign(rand.Reader, digest[:5], h); err == nil {
			t.Fatalf("%v: a short digest was signed", h)
		}
	}
}

// TestSignFallsBack: what libcrypto is not asked to do (SHA-1, a PSS salt
// of another length) is signed by crypto/rsa, correctly.
func TestSignFallsBack(t *testing.T) {
	k := testKey(t)
	s := newOrSkip(t, k)
	d := sha1.Sum([]byte("old"))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA1, d[:], sig); err != nil {
		t.Fatal(err)
	}
	h := crypto.SHA256.New()
	digest := h.Sum(nil)
	pss := &rsa.PSSOptions{SaltLength: 10, Hash: crypto.SHA256}
	if sig, err = s.Sign(rand.Reader, digest, pss); err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, digest, sig, pss); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakes: a TLS server whose certificate's key is a Signer
// completes TLS 1.3 and TLS 1.2 handshakes with a verifying client, from
// several goroutines at once.
func TestHandshakes(t *testing.T) {
	k := testKey(t)
	s := newOrSkip(t, k)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, s) // self-signed through libcrypto too
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: s}}}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- handshake(srv, &tls.Config{RootCAs: roots, ServerName: "mail.test", MinVersion: v, MaxVersion: v})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", tls.VersionName(v), err)
			}
		}
	}
}

func handshake(srv, cli *tls.Config) error {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(a, srv).Handshake() }()
	cerr := tls.Client(b, cli).Handshake()
	if cerr != nil {
		a.Close()
	}
	serr := <-done
	return errors.Join(cerr, serr)
}

// BenchmarkSign compares one TLS 1.3 signature (RSA-2048, PSS, SHA-256)
// through libcrypto with crypto/rsa's.
func BenchmarkSign(b *testing.B) {
	k := testKey(b)
	d := crypto.SHA256.New().Sum(nil)
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Sign(rand.Reader, d, pss); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openssl", func(b *testing.B) {
		s := newOrSkip(b, k)
		for b.Loop() {
			if _, err := s.Sign(rand.Reader, d, pss); err != nil {
				b.Fatal(err)
			}
		}
	})
}

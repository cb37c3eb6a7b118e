//go:build openssl && cgo

package osslrsa

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/err.h>

// pg_rsa_load parses a PKCS #1 RSAPrivateKey; on failure *err is
// libcrypto's error code (read on the thread that failed).
static EVP_PKEY *pg_rsa_load(const unsigned char *der, long len, unsigned long *err) {
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
	*err = k == NULL ? ERR_get_error() : 0;
	ERR_clear_error();
	return k;
}

static const EVP_MD *pg_md(int bits) {
	switch (bits) {
	case 256: return EVP_sha256();
	case 384: return EVP_sha384();
	case 512: return EVP_sha512();
	}
	return NULL;
}

// pg_rsa_ctx makes a signing context of k, ready for EVP_PKEY_sign:
// RSASSA-PSS with a salt as long as the digest when pss, else PKCS #1
// v1.5, for digests of md_bits. NULL on failure. One context serves one
// thread at a time, for any number of signatures.
static EVP_PKEY_CTX *pg_rsa_ctx(EVP_PKEY *k, int md_bits, int pss) {
	const EVP_MD *md = pg_md(md_bits);
	EVP_PKEY_CTX *ctx;
	if (md == NULL)
		return NULL;
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_sign_init(ctx) <= 0
		|| EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0
		|| EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0
		|| (pss && EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) <= 0)) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	return ctx;
}

// pg_rsa_sign signs dig with ctx; 1 on success.
static int pg_rsa_sign(EVP_PKEY_CTX *ctx, const unsigned char *dig, size_t diglen, unsigned char *sig, size_t *siglen) {
	if (EVP_PKEY_sign(ctx, sig, siglen, dig, diglen) > 0)
		return 1;
	ERR_clear_error();
	return 0;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Available reports whether this binary signs through libcrypto.
const Available = true

// Version is the libcrypto in use, as OpenSSL names it.
func Version() string { return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION)) }

// osslKey is a libcrypto EVP_PKEY, freed when it is no longer reachable,
// with pools of signing contexts, one pool per kind of signature.
type osslKey struct {
	p     *C.EVP_PKEY
	size  int             // signature length in bytes
	pools [3][2]sync.Pool // by digest (SHA-256, -384, -512), then PSS: of *signCtx
}

// signCtx is a signing context of one kind, freed when it is no longer
// reachable (a sync.Pool drops what it does not need).
type signCtx struct{ p *C.EVP_PKEY_CTX }

// New makes a Signer of key, which it copies into libcrypto.
func New(key *rsa.PrivateKey) (*Signer, error) {
	der := x509.MarshalPKCS1PrivateKey(key)
	defer clear(der)
	var code C.ulong
	p := C.pg_rsa_load((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)), &code)
	if p == nil {
		return nil, fmt.Errorf("osslrsa: libcrypto refused the key (error %#x)", uint64(code))
	}
	k := &osslKey{p: p, size: key.Size()}
	runtime.AddCleanup(k, freeKey, p)
	return &Signer{key: key, k: k}, nil
}

func freeKey(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }

func freeCtx(p *C.EVP_PKEY_CTX) { C.EVP_PKEY_CTX_free(p) }

// digestIndex is the pools' index of h, and its length in bits for
// libcrypto; ok false for a hash libcrypto is not asked to sign here.
func digestIndex(h crypto.Hash) (i int, bits C.int, ok bool) {
	switch h {
	case crypto.SHA256:
		return 0, 256, true
	case crypto.SHA384:
		return 1, 384, true
	case crypto.SHA512:
		return 2, 512, true
	}
	return 0, 0, false
}

// sign signs digest with h through libcrypto; ok false means libcrypto
// does not take this hash, and the caller goes to crypto/rsa.
func (k *osslKey) sign(h crypto.Hash, pss bool, digest []byte) (sig []byte, ok bool, err error) {
	i, bits, ok := digestIndex(h)
	if !ok {
		return nil, false, nil
	}
	if len(digest) != h.Size() {
		return nil, true, fmt.Errorf("osslrsa: digest of %d bytes for %v", len(digest), h)
	}
	j := 0
	if pss {
		j = 1
	}
	pool := &k.pools[i][j]
	c, _ := pool.Get().(*signCtx)
	if c == nil {
		p := C.pg_rsa_ctx(k.p, bits, C.int(j))
		if p == nil {
			return nil, true, fmt.Errorf("osslrsa: libcrypto could not set up signing (%v, pss %v)", h, pss)
		}
		c = &signCtx{p: p}
		runtime.AddCleanup(c, freeCtx, p)
	}
	sig = make([]byte, k.size)
	n := C.size_t(len(sig))
	r := C.pg_rsa_sign(c.p, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)), (*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	pool.Put(c)
	runtime.KeepAlive(k)
	if r != 1 {
		return nil, true, fmt.Errorf("osslrsa: libcrypto could not sign (%v, pss %v)", h, pss)
	}
	return sig[:n], true, nil
}

package tlsrec

import (
	"crypto/cipher"
	"reflect"
)

// zeroPointee overwrites with zeroes the value that v, a pointer held in
// an interface, points to. The AEADs and block ciphers of crypto/cipher,
// crypto/aes and x/crypto are pointers to structs that hold their
// expanded keys (an AES key schedule, GCM's table of powers of H, a
// ChaCha20 key) in place, out of reach of their exported API; this is the
// one way to wipe them before the garbage collector frees them. The
// clearing goes through reflect, so the runtime's write barriers see any
// pointer it overwrites. v must not be used afterwards. Anything that is
// not a non-nil pointer is left alone.
func zeroPointee(v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return
	}
	if e := rv.Elem(); e.CanSet() {
		e.SetZero()
	}
}

// wipeAEAD zeroes a's expanded key; a must not be used afterwards.
func wipeAEAD(a cipher.AEAD) { zeroPointee(a) }

// wipe zeroes h's secret, IV and AEAD and leaves h unusable: its sequence
// number is spent, so no record is sealed or opened with it again.
func (h *half) wipe() {
	clear(h.secret)
	clear(h.iv[:])
	if h.aead != nil {
		wipeAEAD(h.aead)
	}
	h.secret, h.aead = nil, nil
	h.seq = ^uint64(0)
}

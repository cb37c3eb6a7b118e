package tlsrec

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// pairedStates returns a State that seals and one that opens what it
// sealed, with a fixed secret and no connection: for benchmarks and tests
// of the record layer alone.
func pairedStates(tb testing.TB, id uint16) (sealer, opener *State) {
	tb.Helper()
	s, err := suiteByID(id)
	if err != nil {
		tb.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, s.hash().Size())
	sealer, opener = &State{}, &State{}
	if err := sealer.out.setSecret(s, secret, 0); err != nil {
		tb.Fatal(err)
	}
	if err := opener.in.setSecret(s, bytes.Clone(secret), 0); err != nil {
		tb.Fatal(err)
	}
	return sealer, opener
}

// benchChunk is what one read of a TLS direction takes in the event loop
// (evloop's tlsReadChunk): about two full records.
const benchChunk = 32 << 10

// BenchmarkSeal seals a chunk of plaintext into full records, as the event
// loop does for a TLS destination.
func BenchmarkSeal(b *testing.B) {
	for _, c := range []struct {
		name string
		id   uint16
		n    int
	}{
		{"AES128/16K", tls.TLS_AES_128_GCM_SHA256, 16 << 10},
		{"AES128/64K", tls.TLS_AES_128_GCM_SHA256, 64 << 10},
		{"AES256/16K", tls.TLS_AES_256_GCM_SHA384, 16 << 10},
		{"ChaCha20/16K", tls.TLS_CHACHA20_POLY1305_SHA256, 16 << 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, _ := pairedStates(b, c.id)
			plain := make([]byte, c.n)
			out := make([]byte, 0, c.n+st.Overhead(c.n))
			b.SetBytes(int64(c.n))
			for b.Loop() {
				var err error
				if out, err = st.Seal(out[:0], plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchWire returns a chunk of full AES-128-GCM records as the event loop
// reads them, and a State that opens them from sequence number 0.
func benchWire(b *testing.B) (wire []byte, opener *State, plainLen int) {
	sealer, opener := pairedStates(b, tls.TLS_AES_128_GCM_SHA256)
	plain := make([]byte, benchChunk)
	wire, err := sealer.Seal(nil, plain)
	if err != nil {
		b.Fatal(err)
	}
	return wire, opener, len(plain)
}

// BenchmarkOpenJoin opens a chunk of records in place and joins their
// plaintext for one write, as evloop's readRecords does.
func BenchmarkOpenJoin(b *testing.B) {
	wire, st, n := benchWire(b)
	buf := make([]byte, len(wire))
	b.SetBytes(int64(n))
	for b.Loop() {
		copy(buf, wire) // the read
		st.in.seq = 0
		off, end := 0, 0
		for off < len(buf) {
			used, _, plain, err := st.Open(buf[off:])
			if err != nil || used == 0 {
				b.Fatal(used, err)
			}
			off += used
			end += copy(buf[end:], plain)
		}
		if end != n {
			b.Fatal(end)
		}
	}
}

// BenchmarkOpenAppend opens the same chunk of records into a second
// buffer, in one piece with no joining copy.
func BenchmarkOpenAppend(b *testing.B) {
	wire, st, n := benchWire(b)
	buf := make([]byte, len(wire))
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(n))
	for b.Loop() {
		copy(buf, wire) // the read
		st.in.seq = 0
		out = out[:0]
		for off := 0; off < len(buf); {
			used, _, o, err := st.OpenAppend(out, buf[off:])
			if err != nil || used == 0 {
				b.Fatal(used, err)
			}
			off += used
			out = o
		}
		if len(out) != n {
			b.Fatal(len(out))
		}
	}
}

// BenchmarkSealRead reads (a copy stands for the read) 48 KiB of plaintext
// into a buffer and seals it into another, as evloop does for a TLS
// destination.
func BenchmarkSealRead(b *testing.B) {
	st, _ := pairedStates(b, tls.TLS_AES_128_GCM_SHA256)
	src := make([]byte, 3*MaxPlaintext)
	scratch := make([]byte, len(src))
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		copy(scratch, src) // the read
		var err error
		if out, err = st.Seal(out[:0], scratch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealSlots reads the same plaintext into the slots PlainSlots
// gives and seals it in place.
func BenchmarkSealSlots(b *testing.B) {
	st, _ := pairedStates(b, tls.TLS_AES_128_GCM_SHA256)
	src := make([]byte, 3*MaxPlaintext)
	buf := make([]byte, 64<<10)
	slots := st.PlainSlots(nil, buf)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		rest := src
		for _, s := range slots { // the read
			rest = rest[copy(s, rest):]
		}
		if _, err := st.SealSlots(buf, len(src)); err != nil {
			b.Fatal(err)
		}
	}
}

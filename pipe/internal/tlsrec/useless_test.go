package tlsrec

import (
	"crypto/tls"
	"encoding/binary"
	"strings"
	"testing"
)

// TestNonAdvancingRecordsBounded: as crypto/tls, tlsrec ends a connection
// after 16 records in a row that carry no application data (KeyUpdates,
// tickets, empty records): each KeyUpdate costs an HKDF derivation and a
// new AEAD (about 45 times a small data record, BenchmarkOpenKeyUpdate),
// and a peer on the loops could otherwise send them without end.
func TestNonAdvancingRecordsBounded(t *testing.T) {
	needSupported(t)
	const n = 1000
	// The reference: crypto/tls as the receiver.
	p := newTLSPair(t, 0)
	cs, err := Export(p.client)
	if err != nil {
		t.Fatal(err)
	}
	var flood []byte
	for range n {
		if flood, err = cs.seal(flood, []byte{msgKeyUpdate, 0, 0, 1, 0}, typeHandshake); err != nil {
			t.Fatal(err)
		}
		if err := cs.out.update(); err != nil {
			t.Fatal(err)
		}
	}
	go p.rawClient.Write(flood)
	if _, err := p.server.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "non-advancing") {
		t.Fatalf("crypto/tls after %d KeyUpdates: %v", n, err)
	}
	// tlsrec as the receiver: the same bound, and data in between resets it.
	sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	keyUpdate := func() error {
		rec, err := sealer.seal(nil, []byte{msgKeyUpdate, 0, 0, 1, 0}, typeHandshake)
		if err != nil {
			t.Fatal(err)
		}
		if err := sealer.out.update(); err != nil {
			t.Fatal(err)
		}
		_, _, _, err = opener.Open(rec)
		return err
	}
	for round := range 2 {
		for i := range maxUselessRecords {
			if err := keyUpdate(); err != nil {
				t.Fatalf("round %d: KeyUpdate %d refused: %v", round, i+1, err)
			}
		}
		if round == 0 {
			rec, err := sealer.Seal(nil, []byte("data"))
			if err != nil {
				t.Fatal(err)
			}
			if _, kind, _, err := opener.Open(rec); err != nil || kind != KindData {
				t.Fatalf("data after %d KeyUpdates: %v %v", maxUselessRecords, kind, err)
			}
		}
	}
	if err := keyUpdate(); err == nil {
		t.Fatalf("KeyUpdate %d in a row without data accepted; crypto/tls ends the connection after %d", maxUselessRecords+1, maxUselessRecords)
	}
}

// BenchmarkOpenKeyUpdate measures what one KeyUpdate record (27
// bytes on the wire) costs the receiver, against a data record of the
// same size.
func BenchmarkOpenKeyUpdate(b *testing.B) {
	b.Run("keyupdate", func(b *testing.B) {
		sealer, opener := pairedStates(b, tls.TLS_AES_128_GCM_SHA256)
		recs := make([][]byte, b.N)
		for i := range recs {
			recs[i], _ = sealer.seal(nil, []byte{msgKeyUpdate, 0, 0, 1, 0}, typeHandshake)
			_ = sealer.out.update()
		}
		b.SetBytes(int64(len(recs[0])))
		b.ResetTimer()
		for i := range b.N {
			opener.useless = 0 // the cost of one, not the bound on a flood
			if _, _, _, err := opener.Open(recs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("data", func(b *testing.B) {
		sealer, opener := pairedStates(b, tls.TLS_AES_128_GCM_SHA256)
		recs := make([][]byte, b.N)
		for i := range recs {
			recs[i], _ = sealer.Seal(nil, []byte("hello"))
		}
		b.SetBytes(int64(len(recs[0])))
		b.ResetTimer()
		for i := range b.N {
			if _, _, _, err := opener.Open(recs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestInnerPlaintextOverflow: "the full encoded TLSInnerPlaintext
// MUST NOT exceed 2^14 + 1 octets" (RFC 8446 section 5.4): padding does
// not lift the record size limit. crypto/tls answers record_overflow.
func TestInnerPlaintextOverflow(t *testing.T) {
	sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	inner := make([]byte, MaxPlaintext+1+200) // full data, type, 200 bytes of padding
	for i := range MaxPlaintext {
		inner[i] = 'x'
	}
	inner[MaxPlaintext] = typeData
	nonce, err := sealer.out.nonce()
	if err != nil {
		t.Fatal(err)
	}
	tag := sealer.out.aead.Overhead()
	rec := []byte{typeData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(rec[3:], uint16(len(inner)+tag))
	rec = sealer.out.aead.Seal(rec, nonce[:], inner, rec[:HeaderLen])
	if len(rec)-HeaderLen > maxCiphertext {
		t.Fatalf("test record too long: %d", len(rec)-HeaderLen)
	}
	if _, kind, _, err := opener.Open(rec); err == nil {
		t.Fatalf("a record whose TLSInnerPlaintext is %d bytes (over 2^14+1) opened as %v", len(inner), kind)
	}
}

package tlsrec

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// TestSealSlots: plaintext read into the slots PlainSlots gives, sealed in
// place by SealSlots, makes the same records as Seal of the same
// plaintext, KeyUpdate answer included, for every suite and for lengths
// around the record size.
func TestSealSlots(t *testing.T) {
	for _, id := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		for _, n := range []int{1, 100, MaxPlaintext - 1, MaxPlaintext, MaxPlaintext + 1, 3 * MaxPlaintext, 3*MaxPlaintext + 7} {
			for _, update := range []bool{false, true} {
				viaSeal, opener := pairedStates(t, id)
				viaSlots, _ := pairedStates(t, id)
				viaSeal.answerUpdate, viaSlots.answerUpdate = update, update
				plain := bytes.Repeat([]byte("plaintext "), n/10+1)[:n]

				want, err := viaSeal.Seal(nil, plain)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4*viaSlots.SlotLen()+viaSlots.keyUpdateLen())
				rest := plain
				for _, s := range viaSlots.PlainSlots(nil, buf) { // as readv fills them
					rest = rest[copy(s, rest):]
				}
				if len(rest) != 0 {
					t.Fatalf("slots hold %d bytes short of %d", len(rest), n)
				}
				got, err := viaSlots.SealSlots(buf, n)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("suite %#x, %d bytes, update %v: SealSlots made %d bytes unlike Seal's %d", id, n, update, len(got), len(want))
				}
				if viaSlots.answerUpdate || viaSlots.out.seq != viaSeal.out.seq {
					t.Fatalf("state after SealSlots: update due %v, seq %d; after Seal seq %d", viaSlots.answerUpdate, viaSlots.out.seq, viaSeal.out.seq)
				}
				opened, _ := openRecords(t, opener, got)
				if !bytes.Equal(opened, plain) {
					t.Fatalf("opened %d bytes, want %d", len(opened), n)
				}
			}
		}
	}
}

// TestPlainSlotsShortBuffer: a buffer with room for part of a record gets
// a short last slot; SealSlots refuses more plaintext than the slots hold.
func TestPlainSlotsShortBuffer(t *testing.T) {
	st, _ := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	buf := make([]byte, st.keyUpdateLen()+st.SlotLen()+100)
	slots := st.PlainSlots(nil, buf)
	if len(slots) != 2 || len(slots[0]) != MaxPlaintext || len(slots[1]) != 100-HeaderLen-1-16 {
		t.Fatalf("slots %d (lengths %d, ...)", len(slots), len(slots[0]))
	}
	if s := st.PlainSlots(nil, buf[:st.keyUpdateLen()+HeaderLen+17]); len(s) != 0 {
		t.Fatalf("%d slots in a buffer with no room for plaintext", len(s))
	}
	st.answerUpdate = true
	if _, err := st.SealSlots(buf, MaxPlaintext+100); err == nil {
		t.Fatal("SealSlots took more plaintext than the slots hold")
	}
	if st.out.seq != 0 || !st.answerUpdate {
		t.Fatalf("a refused SealSlots used sequence number %d or the KeyUpdate due", st.out.seq)
	}
	if _, err := st.SealSlots(buf, MaxPlaintext+100-HeaderLen-1-16); err != nil {
		t.Fatalf("SealSlots of what the slots hold: %v", err)
	}
}

// openRecords opens every whole record in wire.
func openRecords(t *testing.T, st *State, wire []byte) (plain []byte, kinds []Kind) {
	t.Helper()
	for len(wire) > 0 {
		used, kind, out, err := st.OpenAppend(plain, wire)
		if err != nil || used == 0 {
			t.Fatalf("open: used %d, %v", used, err)
		}
		plain, wire = out, wire[used:]
		kinds = append(kinds, kind)
	}
	return plain, kinds
}

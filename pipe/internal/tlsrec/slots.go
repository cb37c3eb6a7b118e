package tlsrec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// keyUpdateLen is the size on the wire of a KeyUpdate record: header,
// the 5-byte message, its content type and the tag.
func (st *State) keyUpdateLen() int {
	return HeaderLen + 5 + 1 + st.out.aead.Overhead()
}

// SlotLen is the room one full record takes in a buffer laid out by
// PlainSlots: its header, MaxPlaintext bytes of plaintext, the content
// type and the tag.
func (st *State) SlotLen() int {
	return HeaderLen + MaxPlaintext + 1 + st.out.aead.Overhead()
}

// PlainSlots appends to slots the parts of buf where plaintext is to be
// read (with readv, say) so that SealSlots can seal it in place, without
// copying it: one part per record, MaxPlaintext bytes each (the last may
// be shorter), with room before each for the record's header and after
// it for its content type and tag, and room at the front for a KeyUpdate
// record that may be due. It appends nothing when buf cannot hold a
// record with one byte of plaintext.
//
//	iov := st.PlainSlots(iov[:0], buf)
//	n, _ := unix.Readv(fd, iov)
//	out, _ := st.SealSlots(buf, n) // records, ready to write
func (st *State) PlainSlots(slots [][]byte, buf []byte) [][]byte {
	slot, trailer := st.SlotLen(), 1+st.out.aead.Overhead()
	for off := st.keyUpdateLen(); len(buf)-off > HeaderLen+trailer; off += slot {
		start := off + HeaderLen
		end := min(start+MaxPlaintext, len(buf)-trailer)
		slots = append(slots, buf[start:end])
	}
	return slots
}

// SealSlots seals in place the n bytes of plaintext read into the parts of
// buf that PlainSlots gave, filled in order, and returns the records: a
// part of buf, preceded by a KeyUpdate record when one is due, as Seal
// does. The records are those Seal would make of the same plaintext.
func (st *State) SealSlots(buf []byte, n int) ([]byte, error) {
	if n <= 0 {
		return nil, errors.New("tlsrec: SealSlots without plaintext")
	}
	ku, tag := st.keyUpdateLen(), st.out.aead.Overhead()
	need := ku + n/MaxPlaintext*st.SlotLen()
	if rest := n % MaxPlaintext; rest > 0 {
		need += HeaderLen + rest + 1 + tag
	}
	if need > len(buf) { // checked before any sequence number is used
		return nil, fmt.Errorf("tlsrec: SealSlots: %d bytes of plaintext need %d bytes of buffer, not %d", n, need, len(buf))
	}
	start := ku
	if st.answerUpdate {
		rec, err := st.seal(buf[:0], []byte{msgKeyUpdate, 0, 0, 1, 0}, typeHandshake)
		if err != nil {
			return nil, err
		}
		if len(rec) != ku || &rec[0] != &buf[0] {
			return nil, errors.New("tlsrec: KeyUpdate record not in its slot")
		}
		if err := st.out.update(); err != nil {
			return nil, err
		}
		st.answerUpdate = false
		start = 0
	}
	off := ku
	for n > 0 {
		m := min(n, MaxPlaintext)
		body := off + HeaderLen
		nonce, err := st.out.nonce()
		if err != nil {
			return nil, err
		}
		h := buf[off:body]
		h[0], h[1], h[2] = typeData, 3, 3
		binary.BigEndian.PutUint16(h[3:], uint16(m+1+tag))
		buf[body+m] = typeData
		st.out.aead.Seal(buf[body:body], nonce[:], buf[body:body+m+1], h)
		off = body + m + 1 + tag
		n -= m
	}
	return buf[start:off], nil
}

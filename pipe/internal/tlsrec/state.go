package tlsrec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A State travels between processes (a binary upgrade hands its pipes
// over) as the bytes AppendBinary makes and ParseState reads: the suite,
// the side, each direction's traffic secret and sequence number, a
// KeyUpdate answer that is due, a handshake message fragmented across
// records that has not ended, and Unread. Keys and IVs are derived
// again from the secrets. The bytes hold secrets: the caller keeps them
// off disk and logs and zeroes them once used (the pipe package's
// Detached.Wipe does).

// stateVersion is the first byte of AppendBinary's encoding.
const stateVersion = 1

// maxUnread bounds Unread in an encoded State: what a loop direction can
// hold of records not yet opened (a buffer plus one read's worth).
const maxUnread = 1 << 20

// AppendBinary appends st's encoding to b.
func (st *State) AppendBinary(b []byte) []byte {
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint16(b, st.out.s.id)
	var flags byte
	if st.isClient {
		flags |= 1
	}
	if st.answerUpdate {
		flags |= 2
	}
	if st.fragmented() {
		flags |= 4
	}
	b = append(b, flags)
	if st.fragmented() { // header bytes so far, then the bytes of a ticket still to skip
		b = append(b, byte(st.headLen))
		b = append(b, st.head[:st.headLen]...)
		b = binary.BigEndian.AppendUint32(b, uint32(st.skip))
	}
	for _, h := range [2]*half{&st.in, &st.out} {
		b = binary.BigEndian.AppendUint64(b, h.seq)
		b = append(b, byte(len(h.secret)))
		b = append(b, h.secret...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.Unread)))
	return append(b, st.Unread...)
}

// errTruncated is ParseState's error for bytes that end too soon.
var errTruncated = errors.New("tlsrec: state truncated")

// ParseState reads a State that AppendBinary encoded at the front of b and
// returns it with the number of bytes it took. Its Unread is a copy.
func ParseState(b []byte) (*State, int, error) {
	r := b
	if len(r) < 4 {
		return nil, 0, errTruncated
	}
	if r[0] != stateVersion {
		return nil, 0, fmt.Errorf("tlsrec: state version %d, want %d", r[0], stateVersion)
	}
	s, err := suiteByID(binary.BigEndian.Uint16(r[1:]))
	if err != nil {
		return nil, 0, err
	}
	flags := r[3]
	if flags&^7 != 0 {
		return nil, 0, fmt.Errorf("tlsrec: state flags %#x", flags)
	}
	r = r[4:]
	st := &State{isClient: flags&1 != 0, answerUpdate: flags&2 != 0}
	if flags&4 != 0 {
		if len(r) < 1 {
			return nil, 0, errTruncated
		}
		n := int(r[0])
		if n > 3 || len(r) < 1+n+4 {
			if n > 3 {
				return nil, 0, fmt.Errorf("tlsrec: %d bytes of a split handshake header in state", n)
			}
			return nil, 0, errTruncated
		}
		st.headLen = copy(st.head[:], r[1:1+n])
		st.skip = int(binary.BigEndian.Uint32(r[1+n:]))
		if st.skip > 1<<24-1 || st.headLen > 0 && st.skip > 0 || !st.fragmented() {
			return nil, 0, errors.New("tlsrec: inconsistent fragmented handshake message in state")
		}
		r = r[1+n+4:]
	}
	for _, h := range [2]*half{&st.in, &st.out} {
		if len(r) < 9 {
			return nil, 0, errTruncated
		}
		seq, n := binary.BigEndian.Uint64(r), int(r[8])
		r = r[9:]
		if n != s.hash().Size() {
			return nil, 0, fmt.Errorf("tlsrec: traffic secret of %d bytes, want %d", n, s.hash().Size())
		}
		if len(r) < n {
			return nil, 0, errTruncated
		}
		if err := h.setSecret(s, append([]byte(nil), r[:n]...), seq); err != nil {
			return nil, 0, err
		}
		r = r[n:]
	}
	if len(r) < 4 {
		return nil, 0, errTruncated
	}
	n := binary.BigEndian.Uint32(r)
	r = r[4:]
	if n > maxUnread {
		return nil, 0, fmt.Errorf("tlsrec: %d unread bytes in state, over the limit", n)
	}
	if uint32(len(r)) < n {
		return nil, 0, errTruncated
	}
	if n > 0 {
		st.Unread = append([]byte(nil), r[:n]...)
	}
	return st, len(b) - len(r) + int(n), nil
}

// Wipe zeroes st's traffic secrets, IVs, the AEADs' expanded keys and
// Unread, and makes it unusable.
func (st *State) Wipe() {
	for _, h := range [2]*half{&st.in, &st.out} {
		h.wipe()
	}
	clear(st.Unread)
	st.Unread = nil
}

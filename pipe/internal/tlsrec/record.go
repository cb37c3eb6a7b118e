package tlsrec

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Record sizes (RFC 8446, section 5).
const (
	HeaderLen     = 5
	MaxPlaintext  = 1 << 14
	maxCiphertext = MaxPlaintext + 256
	// MaxRecord is the largest record on the wire: a buffer that can hold
	// it can always make progress in Open.
	MaxRecord = HeaderLen + maxCiphertext
)

// Record content types.
const (
	typeAlert     = 21
	typeHandshake = 22
	typeData      = 23
)

// Post-handshake handshake messages.
const (
	msgNewSessionTicket = 4
	msgKeyUpdate        = 24
)

// Kind says what a record opened by Open carried.
type Kind int

const (
	KindNone        Kind = iota // no complete record yet, or one with nothing for the caller
	KindData                    // application data
	KindCloseNotify             // the peer's close_notify: end of its stream
)

// half is one direction's record protection.
type half struct {
	s      *suite
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
}

// setSecret keys h from secret, which h then owns: a KeyUpdate or Wipe
// zeroes it.
func (h *half) setSecret(s *suite, secret []byte, seq uint64) error {
	key, err := s.expandLabel(secret, "key", s.keyLen)
	if err != nil {
		return fmt.Errorf("tlsrec: derive key: %w", err)
	}
	iv, err := s.expandLabel(secret, "iv", 12)
	if err != nil {
		return fmt.Errorf("tlsrec: derive iv: %w", err)
	}
	aead, err := s.aead(key)
	clear(key)
	if err != nil {
		clear(iv)
		return fmt.Errorf("tlsrec: %w", err)
	}
	if h.aead != nil {
		h.wipe() // a KeyUpdate: the old key is not needed again
	}
	h.s, h.secret, h.aead, h.seq = s, secret, aead, seq
	copy(h.iv[:], iv)
	clear(iv)
	return nil
}

// update moves h to the next traffic secret, as a KeyUpdate does.
func (h *half) update() error {
	next, err := h.s.nextSecret(h.secret)
	if err != nil {
		return fmt.Errorf("tlsrec: key update: %w", err)
	}
	return h.setSecret(h.s, next, 0)
}

// nonce returns the per-record nonce and advances the sequence number.
func (h *half) nonce() ([12]byte, error) {
	if h.seq == ^uint64(0) {
		return [12]byte{}, errors.New("tlsrec: record sequence number exhausted")
	}
	n := h.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], h.seq)
	for i := range s {
		n[4+i] ^= s[i]
	}
	h.seq++
	return n, nil
}

// State is the record layer of one TLS 1.3 connection taken out of
// crypto/tls by Export. It is not safe for concurrent use: a KeyUpdate
// opened with update_requested makes the next Seal send a KeyUpdate first.
type State struct {
	// Unread holds records that crypto/tls had read from the socket but not
	// opened when Export took the state: open them before reading more.
	Unread []byte

	in, out  half
	isClient bool
	// answerUpdate is set by Open when the peer asked for a KeyUpdate; the
	// next Seal sends ours first.
	answerUpdate bool
	// useless counts the records in a row that carried no data (KeyUpdates,
	// tickets, empty records, user_canceled): past maxUselessRecords the
	// connection ends, as crypto/tls ends it, so that a peer cannot make
	// the loop open costly records for nothing. Not carried by
	// AppendBinary: a hand-over starts it again.
	useless int
	// A handshake message fragmented across records (RFC 8446 section
	// 5.1): head holds the first bytes of a header split across records
	// (headLen of 4), skip the bytes still to come of a NewSessionTicket
	// being ignored. Only a ticket may span records here; nothing else
	// may come between its fragments.
	head    [4]byte
	headLen int
	skip    int
}

// maxUselessRecords is crypto/tls's bound on records in a row that carry
// no application data.
const maxUselessRecords = 16

// Overhead is the most Seal adds to n bytes of plaintext (headers, content
// type and tags, and a KeyUpdate record that may be due).
func (st *State) Overhead(n int) int {
	per := HeaderLen + 1 + st.out.aead.Overhead()
	return (n/MaxPlaintext+2)*per + 4
}

// Seal appends plain, cut into application-data records, to dst.
func (st *State) Seal(dst, plain []byte) ([]byte, error) {
	dst = slices.Grow(dst, len(plain)+st.Overhead(len(plain)))
	if st.answerUpdate {
		var err error
		if dst, err = st.seal(dst, []byte{msgKeyUpdate, 0, 0, 1, 0}, typeHandshake); err != nil {
			return dst, err
		}
		if err := st.out.update(); err != nil {
			return dst, err
		}
		st.answerUpdate = false
	}
	for len(plain) > 0 {
		n := min(len(plain), MaxPlaintext)
		var err error
		if dst, err = st.seal(dst, plain[:n], typeData); err != nil {
			return dst, err
		}
		plain = plain[n:]
	}
	return dst, nil
}

// SealCloseNotify appends a close_notify alert to dst.
func (st *State) SealCloseNotify(dst []byte) ([]byte, error) {
	return st.seal(dst, []byte{1, 0}, typeAlert) // warning, close_notify
}

// seal appends one record of content type typ to dst, sealing in place.
func (st *State) seal(dst, content []byte, typ byte) ([]byte, error) {
	nonce, err := st.out.nonce()
	if err != nil {
		return dst, err
	}
	tag := st.out.aead.Overhead()
	dst = slices.Grow(dst, HeaderLen+len(content)+1+tag)
	h := len(dst)
	dst = append(dst, typeData, 3, 3, 0, 0) // outer type is always application_data
	binary.BigEndian.PutUint16(dst[h+3:], uint16(len(content)+1+tag))
	body := len(dst)
	dst = append(dst, content...)
	dst = append(dst, typ)
	sealed := st.out.aead.Seal(dst[body:body], nonce[:], dst[body:], dst[h:body])
	return dst[:body+len(sealed)], nil
}

// Open opens the record at the front of wire, in place. It returns how many
// bytes of wire the record took (0 when wire does not yet hold a whole
// record), what it carried and, for KindData, the plaintext (a part of
// wire). Handshake messages after the handshake (KeyUpdate; tickets when
// this side is the client) are handled here and give KindNone. An error is
// fatal for the connection: a record that fails authentication, a fatal
// alert, a message that has no place after the handshake.
func (st *State) Open(wire []byte) (int, Kind, []byte, error) {
	used, kind, plain, err := st.open(nil, wire, true)
	if kind != KindData {
		plain = nil
	}
	return used, kind, plain, err
}

// OpenAppend is Open that decrypts into dst rather than in place: for
// KindData it returns dst with the record's plaintext appended (grown if
// its capacity is short), otherwise dst as it was (its spare capacity may
// have been written). wire is left as it was. dst's spare capacity must
// not overlap wire (crypto/cipher panics on a partial overlap).
//
// Opening several records one after the other into one buffer gives their
// plaintext in one piece, ready for one write, without the copy that
// joins plaintexts opened in place between their records' headers and
// tags; the cost of decrypting is the same.
func (st *State) OpenAppend(dst, wire []byte) (int, Kind, []byte, error) {
	used, kind, out, err := st.open(dst, wire, false)
	if kind != KindData {
		out = dst
	}
	return used, kind, out, err
}

// open opens the record at the front of wire, in place or appending to
// dst; for KindData it returns the plaintext, appended to dst unless in
// place.
func (st *State) open(dst, wire []byte, inPlace bool) (int, Kind, []byte, error) {
	if len(wire) < HeaderLen {
		return 0, KindNone, nil, nil
	}
	if wire[0] != typeData {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record of outer type %d after the handshake", wire[0])
	}
	if wire[1] != 3 || wire[2] != 3 {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record version %#x%02x", wire[1], wire[2])
	}
	n := int(binary.BigEndian.Uint16(wire[3:]))
	if n > maxCiphertext {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record of %d bytes is over the limit", n)
	}
	if len(wire) < HeaderLen+n {
		return 0, KindNone, nil, nil
	}
	nonce, err := st.in.nonce()
	if err != nil {
		return 0, KindNone, nil, err
	}
	body := wire[HeaderLen : HeaderLen+n]
	if inPlace {
		dst = body[:0]
	}
	out, err := st.in.aead.Open(dst, nonce[:], body, wire[:HeaderLen])
	if err != nil {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record %d: %w", st.in.seq-1, err)
	}
	plain := out[len(dst):]
	if len(plain) > MaxPlaintext+1 { // RFC 8446 section 5.4: padding included
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record's inner plaintext of %d bytes is over the limit", len(plain))
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, KindNone, nil, errors.New("tlsrec: record without a content type")
	}
	typ, content := plain[i], plain[:i]
	if len(content) > MaxPlaintext {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record plaintext of %d bytes is over the limit", len(content))
	}
	used := HeaderLen + n
	if typ != typeHandshake && st.fragmented() {
		return 0, KindNone, nil, fmt.Errorf("tlsrec: record of content type %d inside a fragmented handshake message", typ)
	}
	if typ == typeData && len(content) > 0 {
		st.useless = 0
	} else if typ != typeAlert || len(content) != 2 || content[1] != 0 { // not close_notify, which ends it anyway
		if st.useless++; st.useless > maxUselessRecords {
			return 0, KindNone, nil, fmt.Errorf("tlsrec: %d records in a row without data", st.useless)
		}
	}
	switch typ {
	case typeData:
		return used, KindData, out[:len(dst)+i], nil
	case typeAlert:
		if len(content) != 2 {
			return 0, KindNone, nil, fmt.Errorf("tlsrec: alert of %d bytes", len(content))
		}
		switch content[1] {
		case 0: // close_notify
			return used, KindCloseNotify, nil, nil
		case 90: // user_canceled: a close_notify follows
			return used, KindNone, nil, nil
		}
		return 0, KindNone, nil, fmt.Errorf("tlsrec: peer sent alert %d", content[1])
	case typeHandshake:
		if err := st.handshakeMessages(content); err != nil {
			return 0, KindNone, nil, err
		}
		return used, KindNone, nil, nil
	}
	return 0, KindNone, nil, fmt.Errorf("tlsrec: record of content type %d after the handshake", typ)
}

// fragmented reports whether a handshake message has begun in an earlier
// record and not ended.
func (st *State) fragmented() bool { return st.headLen > 0 || st.skip > 0 }

// handshakeMessages handles the post-handshake messages of one record. A
// NewSessionTicket (ignored) may be fragmented across records, its
// header included; a KeyUpdate must be whole and end its record.
func (st *State) handshakeMessages(b []byte) error {
	for len(b) > 0 {
		if st.skip > 0 { // the rest of an ignored ticket
			k := min(st.skip, len(b))
			st.skip -= k
			b = b[k:]
			continue
		}
		var hdr [4]byte
		if st.headLen > 0 || len(b) < 4 {
			k := copy(st.head[st.headLen:], b)
			st.headLen += k
			b = b[k:]
			if st.head[0] != msgNewSessionTicket || !st.isClient {
				return fmt.Errorf("tlsrec: handshake message %d split across records", st.head[0])
			}
			if st.headLen < 4 {
				return nil // the header goes on in the next record
			}
			hdr, st.headLen = st.head, 0
		} else {
			copy(hdr[:], b)
			b = b[4:]
		}
		typ, n := hdr[0], int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3])
		switch {
		case typ == msgKeyUpdate:
			if n != 1 || len(b) != 1 || b[0] > 1 {
				return errors.New("tlsrec: malformed KeyUpdate, or not alone at the end of its record")
			}
			if err := st.in.update(); err != nil {
				return err
			}
			if b[0] == 1 {
				st.answerUpdate = true
			}
			b = nil
		case typ == msgNewSessionTicket && st.isClient:
			// Tickets are for resuming, which a connection taken out of
			// crypto/tls never does: skipped, across records if need be.
			k := min(n, len(b))
			st.skip = n - k
			b = b[k:]
		default:
			return fmt.Errorf("tlsrec: handshake message %d after the handshake", typ)
		}
	}
	return nil
}

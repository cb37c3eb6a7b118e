package tlsrec

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"reflect"
)

// Export takes the record layer out of c, whose handshake must be complete,
// with TLS 1.3 and no plaintext buffered: nothing decrypted that the
// application has not read, no records waiting to be sent. Records that
// crypto/tls has read from the socket but not opened yet are returned in
// State.Unread: they come before anything still in the socket. The caller must be the
// only user of c; afterwards it must never read, write or close c through
// crypto/tls again (doing so would reuse nonces), only through the socket
// under it (c.NetConn()).
//
// On error c is untouched and still usable; errors for connections this
// package does not handle wrap ErrUnsupported.
func Export(c *tls.Conn) (*State, error) {
	cs := c.ConnectionState()
	if !cs.HandshakeComplete {
		return nil, fmt.Errorf("tlsrec: handshake not complete: %w", ErrUnsupported)
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("tlsrec: %s: %w", tls.VersionName(cs.Version), ErrUnsupported)
	}
	s, err := suiteByID(cs.CipherSuite)
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(c).Elem()
	f := fields{v: v}
	isClient := f.bool("isClient")
	if f.readerLen("input") != 0 || len(f.bufferBytes("hand")) != 0 {
		if f.err == nil {
			return nil, fmt.Errorf("tlsrec: received plaintext is buffered in crypto/tls: %w", ErrUnsupported)
		}
	}
	unread := f.bufferBytes("rawInput")
	if f.bool("buffering") || f.sliceLen("sendBuf") != 0 || f.bool("closeNotifySent") {
		if f.err == nil {
			return nil, fmt.Errorf("tlsrec: records are pending or close_notify was sent: %w", ErrUnsupported)
		}
	}
	inSecret, inSeq, inErr := f.half("in")
	outSecret, outSeq, outErr := f.half("out")
	if f.err != nil {
		return nil, fmt.Errorf("tlsrec: read crypto/tls state (%s): %v: %w", reflect.TypeFor[tls.Conn]().PkgPath(), f.err, ErrUnsupported)
	}
	if inErr || outErr {
		return nil, fmt.Errorf("tlsrec: the connection has failed: %w", ErrUnsupported)
	}
	if len(inSecret) != s.hash().Size() || len(outSecret) != s.hash().Size() {
		return nil, fmt.Errorf("tlsrec: traffic secrets of %d and %d bytes for %s: %w", len(inSecret), len(outSecret), tls.CipherSuiteName(s.id), ErrUnsupported)
	}
	st := &State{isClient: isClient, Unread: unread}
	if err := st.in.setSecret(s, inSecret, inSeq); err != nil {
		return nil, err
	}
	if err := st.out.setSecret(s, outSecret, outSeq); err != nil {
		return nil, err
	}
	return st, nil
}

// fields reads unexported fields of a tls.Conn, remembering the first
// field that is missing or of an unexpected kind.
type fields struct {
	v   reflect.Value
	err error
}

func (f *fields) field(v reflect.Value, name string, k reflect.Kind) reflect.Value {
	if f.err != nil {
		return reflect.Value{}
	}
	x := v.FieldByName(name)
	if !x.IsValid() || x.Kind() != k {
		f.err = fmt.Errorf("field %s.%s: not a %s", v.Type(), name, k)
		return reflect.Value{}
	}
	return x
}

func (f *fields) bool(name string) bool {
	x := f.field(f.v, name, reflect.Bool)
	return x.IsValid() && x.Bool()
}

func (f *fields) sliceLen(name string) int {
	x := f.field(f.v, name, reflect.Slice)
	if !x.IsValid() {
		return 0
	}
	return x.Len()
}

// bufferBytes copies the unread bytes of a bytes.Buffer field: buf[off:].
func (f *fields) bufferBytes(name string) []byte {
	b := f.field(f.v, name, reflect.Struct)
	if !b.IsValid() {
		return nil
	}
	buf, off := f.field(b, "buf", reflect.Slice), f.field(b, "off", reflect.Int)
	if f.err != nil || buf.Type().Elem().Kind() != reflect.Uint8 {
		return nil
	}
	n := buf.Len() - int(off.Int())
	if n <= 0 {
		return nil
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(buf.Index(int(off.Int()) + i).Uint())
	}
	return out
}

// readerLen is Len of a bytes.Reader field: len(s) - i.
func (f *fields) readerLen(name string) int {
	r := f.field(f.v, name, reflect.Struct)
	if !r.IsValid() {
		return 0
	}
	s, i := f.field(r, "s", reflect.Slice), f.field(r, "i", reflect.Int64)
	if f.err != nil {
		return 0
	}
	return s.Len() - int(i.Int())
}

// half reads a halfConn: its traffic secret (copied), its sequence number,
// and whether it holds a permanent error.
func (f *fields) half(name string) (secret []byte, seq uint64, failed bool) {
	h := f.field(f.v, name, reflect.Struct)
	if !h.IsValid() {
		return nil, 0, false
	}
	sec := f.field(h, "trafficSecret", reflect.Slice)
	sq := f.field(h, "seq", reflect.Array)
	e := f.field(h, "err", reflect.Interface)
	if f.err != nil {
		return nil, 0, false
	}
	if sq.Len() != 8 || sq.Type().Elem().Kind() != reflect.Uint8 || sec.Type().Elem().Kind() != reflect.Uint8 {
		f.err = fmt.Errorf("field %s.seq or trafficSecret: unexpected type", h.Type())
		return nil, 0, false
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(sq.Index(i).Uint())
	}
	secret = make([]byte, sec.Len())
	for i := range secret {
		secret[i] = byte(sec.Index(i).Uint())
	}
	return secret, binary.BigEndian.Uint64(b[:]), !e.IsNil()
}

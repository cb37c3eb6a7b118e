//go:build go1.26 && !go1.27 && !pipegate_notlsrec

package tlsrec

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"reflect"
)

// Supported reports whether Export can read the crypto/tls of the Go
// release this binary was built with. This file reads the tls.Conn fields
// of Go 1.26 (isClient, input, hand, rawInput, buffering, sendBuf,
// closeNotifySent, and in and out with their trafficSecret, seq and err),
// which the tests check against a real crypto/tls peer. A new Go release
// gets the fallback (Supported false, ErrGoRelease) until it has been
// tested and added to this file's build constraint. The tag
// pipegate_notlsrec forces the fallback.
const Supported = true

// readConn reads c's state with package reflect (read only, no unsafe).
// A field that is missing or of an unexpected kind gives ErrGoRelease.
func readConn(c *tls.Conn) (connState, error) {
	f := fields{v: reflect.ValueOf(c).Elem()}
	isClient := f.bool("isClient")
	if f.readerLen("input") != 0 || len(f.bufferBytes("hand")) != 0 {
		if f.err == nil {
			return connState{}, fmt.Errorf("tlsrec: received plaintext is buffered in crypto/tls: %w", ErrBuffered)
		}
	}
	unread := f.bufferBytes("rawInput")
	if f.bool("buffering") || f.sliceLen("sendBuf") != 0 {
		if f.err == nil {
			return connState{}, fmt.Errorf("tlsrec: records are pending in crypto/tls: %w", ErrBuffered)
		}
	}
	if f.bool("closeNotifySent") && f.err == nil {
		return connState{}, fmt.Errorf("tlsrec: close_notify was sent: %w", ErrState)
	}
	inSecret, inSeq, inErr := f.half("in")
	outSecret, outSeq, outErr := f.half("out")
	if f.err != nil {
		return connState{}, fmt.Errorf("tlsrec: read crypto/tls state (%s): %v: %w", reflect.TypeFor[tls.Conn]().PkgPath(), f.err, ErrGoRelease)
	}
	if inErr || outErr {
		return connState{}, fmt.Errorf("tlsrec: the connection has failed: %w", ErrState)
	}
	return connState{
		isClient: isClient, unread: unread,
		inSecret: inSecret, outSecret: outSecret,
		inSeq: inSeq, outSeq: outSeq,
	}, nil
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

package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pipegate/pipegate/internal/ascii"
)

// maxClientHello bounds the bytes read while looking for the server name.
// Real ClientHellos (even with post-quantum key shares) stay well under it.
const maxClientHello = 64 << 10

// ErrNotTLS is returned by PeekClientHello when the first bytes are not a
// TLS handshake record.
var ErrNotTLS = errors.New("not a TLS ClientHello")

// PeekClientHello reads a TLS ClientHello from r and returns the SNI server
// name it carries ("" when there is none) and every byte read, to be
// replayed to the upstream. It reads only as many records as the
// ClientHello spans, so no byte after it is consumed.
func PeekClientHello(r io.Reader) (serverName string, peeked []byte, err error) {
	var hello []byte // handshake message bytes, reassembled from records
	need := 4        // handshake header first, then its full length
	for len(hello) < need {
		var hdr [5]byte
		got, err := io.ReadFull(r, hdr[:])
		peeked = append(peeked, hdr[:got]...)
		if err != nil {
			return "", peeked, fmt.Errorf("read TLS record header: %w", err)
		}
		if hdr[0] != 22 || hdr[1] != 3 {
			return "", peeked, fmt.Errorf("%w: record type %d version %d.%d", ErrNotTLS, hdr[0], hdr[1], hdr[2])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || len(peeked)+n > maxClientHello {
			return "", peeked, fmt.Errorf("%w: record length %d", ErrNotTLS, n)
		}
		start := len(peeked)
		peeked = append(peeked, make([]byte, n)...)
		if got, err := io.ReadFull(r, peeked[start:]); err != nil {
			return "", peeked[:start+got], fmt.Errorf("read TLS record: %w", err)
		}
		hello = append(hello, peeked[start:]...)
		if len(hello) >= 4 && need == 4 {
			if hello[0] != 1 {
				return "", peeked, fmt.Errorf("%w: handshake type %d, want ClientHello", ErrNotTLS, hello[0])
			}
			need = 4 + (int(hello[1])<<16 | int(hello[2])<<8 | int(hello[3]))
			if need > maxClientHello {
				return "", peeked, fmt.Errorf("%w: ClientHello of %d bytes", ErrNotTLS, need)
			}
		}
	}
	name, err := parseClientHello(hello[4:need])
	return name, peeked, err
}

// parseClientHello returns the host name of the server_name extension of
// a ClientHello body (after the 4-byte handshake header).
func parseClientHello(b []byte) (string, error) {
	p := parser(b)
	if !p.skip(2 + 32) { // legacy_version, random
		return "", errMalformedHello
	}
	if !p.skipVec(1) || !p.skipVec(2) || !p.skipVec(1) { // session id, cipher suites, compression
		return "", errMalformedHello
	}
	if len(p) == 0 {
		return "", nil // no extensions
	}
	exts, ok := p.vec(2)
	if !ok {
		return "", errMalformedHello
	}
	for len(exts) > 0 {
		var typ uint16
		var body parser
		if typ, ok = exts.u16(); !ok {
			return "", errMalformedHello
		}
		if body, ok = exts.vec(2); !ok {
			return "", errMalformedHello
		}
		if typ != 0 { // server_name
			continue
		}
		list, ok := body.vec(2)
		if !ok {
			return "", errMalformedHello
		}
		for len(list) > 0 {
			kind, ok := list.u8()
			if !ok {
				return "", errMalformedHello
			}
			name, ok := list.vec(2)
			if !ok {
				return "", errMalformedHello
			}
			if kind == 0 { // host_name
				return routeName(string(name)), nil
			}
		}
		return "", nil
	}
	return "", nil
}

var errMalformedHello = fmt.Errorf("%w: malformed ClientHello", ErrNotTLS)

// parser reads TLS wire structures; each method consumes what it returns.
type parser []byte

func (p *parser) skip(n int) bool {
	if len(*p) < n {
		return false
	}
	*p = (*p)[n:]
	return true
}

func (p *parser) u8() (byte, bool) {
	if len(*p) < 1 {
		return 0, false
	}
	v := (*p)[0]
	*p = (*p)[1:]
	return v, true
}

func (p *parser) u16() (uint16, bool) {
	if len(*p) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*p)
	*p = (*p)[2:]
	return v, true
}

// vec reads a vector with a lenBytes-byte (1 or 2) length prefix.
func (p *parser) vec(lenBytes int) (parser, bool) {
	var n int
	switch lenBytes {
	case 1:
		v, ok := p.u8()
		if !ok {
			return nil, false
		}
		n = int(v)
	default:
		v, ok := p.u16()
		if !ok {
			return nil, false
		}
		n = int(v)
	}
	if len(*p) < n {
		return nil, false
	}
	v := (*p)[:n]
	*p = (*p)[n:]
	return v, true
}

func (p *parser) skipVec(lenBytes int) bool {
	_, ok := p.vec(lenBytes)
	return ok
}

// matchRoute reports whether server name name matches pattern: equal
// ignoring ASCII case and a trailing dot, or "*.example.com" for any name
// ending in ".example.com".
func matchRoute(pattern, name string) bool {
	pattern, name = routeName(pattern), routeName(name)
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(name) > len(suffix) && strings.HasSuffix(name, suffix)
	}
	return pattern == name
}

// routeName is a server name as routes compare it: ASCII letters in lower
// case (host names are ASCII; RFC 6066 section 3), no trailing dot (a
// route written as in a zone file, "mail.example.com.", matches too).
func routeName(s string) string { return ascii.Lower(strings.TrimSuffix(s, ".")) }

package pipe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/evloop"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// Detached.State is, in order (integers big-endian):
//
//	"PGDS"  magic
//	u8      version (stateVersion)
//	u32     length of the body
//	body:
//	  i64   start (Unix ns)
//	  i64×3 Options: IdleTimeout, MaxLifetime, HalfCloseLinger (ns)
//	  i64×3 age, idle time, time since the first half-close (-1: none), ns
//	  u8    FirstEnd
//	  2×    direction A→B then B→A:
//	          i64 bytes written; u8 flags (1 EOF, 2 done, 4 close_notify sealed);
//	          u32 plaintext behind the pending bytes (TLS dst);
//	          u32 length, then the pending bytes (sealed records for a TLS dst)
//	  2×    side A then B: u8 0 (plain) or 1 (TLS), then tlsrec's encoding
//	u32     CRC-32C of everything before it
//
// The checksum finds truncation and corruption in transit or in a buffer;
// it is no defence against a forger, who would need the hand-over socket
// (private to the daemon's user) anyway.

const (
	stateMagic   = "PGDS"
	stateVersion = 1
	// maxPending bounds the pending bytes of one direction: a kernel pipe's
	// worth (F_SETPIPE_SZ may make it a few MiB) or a buffer.
	maxPending = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrBadState is wrapped by Adopt's errors for a Detached whose State it
// cannot read: truncated, corrupted, of another version or inconsistent.
var ErrBadState = errors.New("pipe: bad detached state")

// encodeState makes Detached.State of a Snapshot.
func encodeState(s *evloop.Snapshot) []byte {
	n := 64 + 8
	for _, d := range s.Dirs {
		n += 20 + len(d.Pending)
	}
	for _, st := range s.TLS {
		if st != nil {
			n += 160 + len(st.Unread)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = append(b, 0, 0, 0, 0) // body length
	body := len(b)
	i64 := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	i64(s.Start.UnixNano())
	i64(int64(s.Opts.IdleTimeout))
	i64(int64(s.Opts.MaxLifetime))
	i64(int64(s.Opts.HalfCloseLinger))
	i64(int64(s.Age))
	i64(int64(s.Idle))
	i64(int64(s.Linger))
	b = append(b, byte(s.FirstEnd))
	for _, d := range s.Dirs {
		i64(d.Bytes)
		var f byte
		if d.EOF {
			f |= 1
		}
		if d.Done {
			f |= 2
		}
		if d.CloseNotify {
			f |= 4
		}
		b = append(b, f)
		b = binary.BigEndian.AppendUint32(b, uint32(d.PendingPlain))
		b = binary.BigEndian.AppendUint32(b, uint32(len(d.Pending)))
		b = append(b, d.Pending...)
	}
	for _, st := range s.TLS {
		if st == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = st.AppendBinary(b)
	}
	binary.BigEndian.PutUint32(b[body-4:], uint32(len(b)-body))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// stateReader reads the body of a State; the first error sticks.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadState}, args...)...)
	}
}

func (r *stateReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated in %s", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) i64(what string) int64 {
	if v := r.take(8, what); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (r *stateReader) u32(what string) int {
	if v := r.take(4, what); v != nil {
		return int(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *stateReader) u8(what string) byte {
	if v := r.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

// decodeState reads Detached.State. On error no TLS state it made is left
// unwiped.
func decodeState(b []byte) (s *evloop.Snapshot, err error) {
	const head = len(stateMagic) + 1 + 4
	if len(b) < head+4 {
		return nil, fmt.Errorf("%w: %d bytes, truncated", ErrBadState, len(b))
	}
	if string(b[:4]) != stateMagic {
		return nil, fmt.Errorf("%w: no magic %q", ErrBadState, stateMagic)
	}
	if b[4] != stateVersion {
		return nil, fmt.Errorf("%w: version %d, this binary reads version %d", ErrBadState, b[4], stateVersion)
	}
	n := int(binary.BigEndian.Uint32(b[5:]))
	if n > len(b)-head-4 {
		return nil, fmt.Errorf("%w: body of %d bytes in %d, truncated", ErrBadState, n, len(b))
	}
	if len(b) != head+n+4 {
		return nil, fmt.Errorf("%w: %d bytes after the checksum", ErrBadState, len(b)-head-n-4)
	}
	if sum := binary.BigEndian.Uint32(b[head+n:]); sum != crc32.Checksum(b[:head+n], crcTable) {
		return nil, fmt.Errorf("%w: checksum mismatch (corrupted)", ErrBadState)
	}
	r := &stateReader{b: b[head : head+n]}
	s = &evloop.Snapshot{}
	defer func() {
		if err != nil {
			for _, st := range s.TLS {
				if st != nil {
					st.Wipe()
				}
			}
			s = nil
		}
	}()
	start := r.i64("start")
	s.Start = time.Unix(0, start)
	s.Opts.IdleTimeout = time.Duration(r.i64("idle timeout"))
	s.Opts.MaxLifetime = time.Duration(r.i64("lifetime"))
	s.Opts.HalfCloseLinger = time.Duration(r.i64("linger"))
	s.Age = time.Duration(r.i64("age"))
	s.Idle = time.Duration(r.i64("idle time"))
	s.Linger = time.Duration(r.i64("half-close time"))
	s.FirstEnd = core.Side(r.u8("first end"))
	if r.err == nil {
		switch {
		case start <= 0:
			r.fail("start %d", start)
		case s.Opts.IdleTimeout < 0 || s.Opts.MaxLifetime < 0:
			r.fail("negative limit")
		case s.Age < 0 || s.Idle < 0 || s.Idle > s.Age || s.Linger < -1 || s.Linger > s.Age:
			r.fail("times age %d, idle %d, half-closed %d", s.Age, s.Idle, s.Linger)
		case s.FirstEnd != core.SideNone && s.FirstEnd != core.SideA && s.FirstEnd != core.SideB:
			r.fail("side %d", s.FirstEnd)
		}
	}
	for i := range s.Dirs {
		d := &s.Dirs[i]
		d.Bytes = r.i64("byte count")
		f := r.u8("flags")
		d.EOF, d.Done, d.CloseNotify = f&1 != 0, f&2 != 0, f&4 != 0
		d.PendingPlain = r.u32("pending plaintext")
		np := r.u32("pending length")
		switch {
		case r.err != nil:
		case f&^7 != 0:
			r.fail("direction flags %#x", f)
		case d.Bytes < 0 || d.Done && !d.EOF:
			r.fail("direction %d: %d bytes, flags %#x", i, d.Bytes, f)
		case np > maxPending || d.PendingPlain > maxPending:
			r.fail("direction %d: %d pending bytes, over the limit", i, np)
		}
		if p := r.take(np, "pending bytes"); len(p) > 0 {
			d.Pending = append([]byte(nil), p...)
		}
	}
	for i := range s.TLS {
		switch r.u8("side kind") {
		case 0:
		case 1:
			if r.err != nil {
				break
			}
			st, used, err := tlsrec.ParseState(r.b)
			if err != nil {
				r.fail("side %d: %v", i, err)
				break
			}
			s.TLS[i] = st
			r.b = r.b[used:]
		default:
			r.fail("side %d kind", i)
		}
	}
	if r.err == nil {
		for i, d := range s.Dirs {
			// Sealed output and its plaintext count only go with a TLS dst.
			if s.TLS[1-i] == nil && (d.PendingPlain != 0 || d.CloseNotify) {
				r.fail("direction %d: TLS fields for a plain side", i)
			}
		}
		if len(r.b) != 0 {
			r.fail("%d bytes left over", len(r.b))
		}
	}
	if r.err != nil {
		return s, r.err
	}
	return s, nil
}

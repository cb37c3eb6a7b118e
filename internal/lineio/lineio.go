// Package lineio reads the line-based pre-login dialogues of the mail
// protocols (IMAP, POP3, ManageSieve, SMTP) with a limit that is enforced as soon
// as it is passed, never by waiting for a line end that may not come.
//
//	line, err := lineio.ReadLine(br, lineio.Fixed(255))
//	if errors.Is(err, lineio.ErrTooLong) { /* refuse now, then close */ }
package lineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// ErrTooLong is ReadLine's answer to a line over its limit.
var ErrTooLong = errors.New("line too long")

// ReadLine reads up to and including the next LF. limit gives the most
// octets the line may have without its line end, given the part of it read
// so far (a POP3 AUTH line may be longer than other commands). As soon as
// more than that have come without a LF, ReadLine returns them with
// ErrTooLong: it never waits for a byte that cannot make the line
// valid, since the client may never send one.
func ReadLine(br *bufio.Reader, limit func(sofar []byte) int) ([]byte, error) {
	var line []byte
	for {
		n := br.Buffered()
		if n == 0 {
			// Peek(1) returns after one read that gave at least one
			// byte, not when the buffer is full as ReadSlice would.
			if _, err := br.Peek(1); err != nil {
				return nil, ReadErr(err, len(line))
			}
			n = br.Buffered()
		}
		want := min(n, max(limit(line), 0)+2-len(line))
		if want <= 0 {
			return line, ErrTooLong
		}
		chunk, _ := br.Peek(want) // buffered: no read, no error
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line = append(line, chunk[:i+1]...)
			_, _ = br.Discard(i + 1)
			if len(TrimEOL(line)) > limit(line) {
				return line, ErrTooLong
			}
			return line, nil
		}
		line = append(line, chunk...)
		_, _ = br.Discard(len(chunk))
		if len(bytes.TrimSuffix(line, []byte("\r"))) > limit(line) {
			return line, ErrTooLong
		}
	}
}

// Fixed is a ReadLine limit that does not depend on the line.
func Fixed(n int) func([]byte) int { return func([]byte) int { return n } }

// ReadErr turns an EOF after n > 0 bytes of a line into io.ErrUnexpectedEOF.
func ReadErr(err error, n int) error {
	if err == io.EOF && n > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// TrimEOL removes a trailing LF or CRLF.
func TrimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// SafeText makes s fit in one response line: CR, LF and NUL become spaces
// and the result is cut to 400 octets, so that text from elsewhere (a
// backend, a routing source) cannot add lines to a response.
func SafeText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			b[i] = ' '
		}
	}
	if len(b) > 400 {
		b = b[:400]
	}
	return strings.ToValidUTF8(string(bytes.TrimSpace(b)), "")
}

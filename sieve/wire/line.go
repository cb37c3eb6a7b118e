package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// errLineTooLong is readLine's answer to a line over its limit.
var errLineTooLong = errors.New("line too long")

// readLine reads up to and including the next LF. limit gives the most
// octets the line may have without its line end, given the part of it read
// so far (a POP3 AUTH line may be longer than other commands). As soon as
// more than that have come without a LF, readLine returns them with
// errLineTooLong: it never waits for a byte that cannot make the line
// valid, since the client may never send one.
func readLine(br *bufio.Reader, limit func(sofar []byte) int) ([]byte, error) {
	var line []byte
	for {
		n := br.Buffered()
		if n == 0 {
			// Peek(1) returns after one read that gave at least one
			// byte, not when the buffer is full as ReadSlice would.
			if _, err := br.Peek(1); err != nil {
				return nil, readErr(err, len(line))
			}
			n = br.Buffered()
		}
		want := min(n, max(limit(line), 0)+2-len(line))
		if want <= 0 {
			return line, errLineTooLong
		}
		chunk, _ := br.Peek(want) // buffered: no read, no error
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line = append(line, chunk[:i+1]...)
			_, _ = br.Discard(i + 1)
			if len(trimEOL(line)) > limit(line) {
				return line, errLineTooLong
			}
			return line, nil
		}
		line = append(line, chunk...)
		_, _ = br.Discard(len(chunk))
		if len(bytes.TrimSuffix(line, []byte("\r"))) > limit(line) {
			return line, errLineTooLong
		}
	}
}

// fixed is a readLine limit that does not depend on the line.
func fixed(n int) func([]byte) int { return func([]byte) int { return n } }

func readErr(err error, n int) error {
	if err == io.EOF && n > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimEOL(b []byte) []byte {
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

package wire

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
)

// maxQuoted is the longest string Writer sends quoted rather than as a literal.
const maxQuoted = 1024

// Writer writes a command to a server, choosing for each string a quoted
// string when it is safe, else a literal of the kind the server takes. The
// first error sticks; check it with Flush or Err.
type Writer struct {
	W *bufio.Writer
	// LiteralPlus: the server advertised LITERAL+, non-synchronizing
	// literals of any size are fine.
	LiteralPlus bool
	// LiteralMinus: the server advertised LITERAL-, non-synchronizing
	// literals up to LiteralMinusMax bytes are fine.
	LiteralMinus bool
	// Continue waits for the server's "+" continuation request before the
	// bytes of a synchronizing literal are sent (Writer has flushed).
	Continue func() error

	err error
}

// Err returns the first error met.
func (w *Writer) Err() error { return w.err }

func (w *Writer) write(s string) *Writer {
	if w.err == nil {
		_, w.err = w.W.WriteString(s)
	}
	return w
}

// Atom writes s as is (the caller knows it is an atom, a tag or a command name).
func (w *Writer) Atom(s string) *Writer { return w.write(s) }

// SP writes a space.
func (w *Writer) SP() *Writer { return w.write(" ") }

// CRLF ends the line.
func (w *Writer) CRLF() *Writer { return w.write("\r\n") }

// Flush flushes the buffer and returns the first error met.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.W.Flush()
	}
	return w.err
}

// Quotable reports whether s can be sent as a quoted string: 7-bit, no CR,
// LF or NUL, not too long.
func Quotable(s string) bool {
	if len(s) > maxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 || c == '\r' || c == '\n' || c >= 0x80 {
			return false
		}
	}
	return true
}

// IsAtom reports whether s can be sent as an atom (a capability, say):
// one or more 7-bit ATOM-CHARs of RFC 9051, so no control byte, space or
// "]", which would end a response code.
func IsAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || !isAtomChar(c) {
			return false
		}
	}
	return s != ""
}

// AppendQuoted appends s as a quoted string (s must be Quotable).
func AppendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// String writes s as a quoted string when Quotable, else as a literal:
// non-synchronizing when the server allows it for that size, else
// synchronizing (flush, Continue, then the bytes).
func (w *Writer) String(s string) *Writer {
	if w.err != nil {
		return w
	}
	if Quotable(s) {
		return w.write(string(AppendQuoted(nil, s)))
	}
	if strings.IndexByte(s, 0) >= 0 {
		w.err = errNULString // a literal is CHAR8, %x01-ff (RFC 9051)
		return w
	}
	n := strconv.Itoa(len(s))
	if w.LiteralPlus || w.LiteralMinus && len(s) <= LiteralMinusMax {
		return w.write("{" + n + "+}\r\n").write(s)
	}
	w.write("{" + n + "}\r\n")
	if w.Flush() != nil {
		return w
	}
	if w.Continue == nil {
		w.err = errors.New("imap: synchronizing literal needs Writer.Continue")
		return w
	}
	if err := w.Continue(); err != nil {
		w.err = err
		return w
	}
	return w.write(s)
}

// errNULString: no IMAP string holds NUL (only literal8, which no
// pre-login command takes).
var errNULString = errors.New("imap: a string with NUL cannot be sent")

// NString writes s, or NIL when s is nil.
func (w *Writer) NString(s *string) *Writer {
	if s == nil {
		return w.write("NIL")
	}
	return w.String(*s)
}

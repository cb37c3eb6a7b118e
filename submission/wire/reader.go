package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Defaults used when the Reader's limits are zero. Each counts the line's
// CRLF, as the RFCs do.
const (
	// DefaultMaxLine is the longest command line: RFC 5321 section
	// 4.5.3.1.4.
	DefaultMaxLine = 512
	// DefaultMaxAuthLine is the longest line of an AUTH exchange: RFC
	// 4954 section 4 ("12288 octets is considered to be a sufficient
	// line length limit").
	DefaultMaxAuthLine = 12288
	maxVerb            = 32
)

// Reader reads client commands and AUTH exchange lines from a buffered
// connection. Set the fields before the first call; zero limits mean the
// defaults.
type Reader struct {
	br *bufio.Reader

	MaxLine int // octets of a command line, CRLF included
	// MaxAuthCommand is the limit for an AUTH command line with its
	// initial response; 0 means MaxLine, as RFC 4954 section 4 has it
	// (a client whose initial response would not fit sends it after
	// "334 "). Raise it for clients that send long ones anyway.
	MaxAuthCommand int
	MaxAuthLine    int // octets of a line of an AUTH exchange, CRLF included
	// AllowBareLF accepts a line ended by LF alone. RFC 5321 section
	// 2.3.8 allows CRLF only; by default a bare LF is refused.
	AllowBareLF bool
}

// NewReader returns a Reader on br with the default limits.
func NewReader(br *bufio.Reader) *Reader { return &Reader{br: br} }

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func (r *Reader) maxLine() int { return orDefault(r.MaxLine, DefaultMaxLine) }

func (r *Reader) maxAuthCommand() int { return orDefault(r.MaxAuthCommand, r.maxLine()) }

// commandLimit is the readLine limit (CRLF not counted) for a command
// line, once its verb tells whether it is AUTH.
func (r *Reader) commandLimit(sofar []byte) int {
	line, auth := r.maxLine(), r.maxAuthCommand()
	if line == auth {
		return line - 2
	}
	if len(sofar) < 5 {
		return max(line, auth) - 2
	}
	if bytes.EqualFold(sofar[:5], []byte("AUTH ")) {
		return auth - 2
	}
	return line - 2
}

// Buffered returns the number of bytes read from the connection but not
// yet consumed. After STARTTLS these are pipelined bytes that must be
// discarded, never executed (RFC 3207 section 4.2); elsewhere they are
// commands pipelined by the client (RFC 2920), read by the next call.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// LineBuffered reports whether the bytes read but not yet consumed hold
// a whole line: the next ReadCommand returns without waiting for the
// client.
func (r *Reader) LineBuffered() bool {
	b, _ := r.br.Peek(r.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// Command is a client command as read by ReadCommand.
type Command struct {
	Verb   string // upper case: "EHLO", "AUTH", "MAIL", ...
	Params string // everything after the verb and its space, as sent
}

// Args returns the parameters split at spaces (SP, RFC 5321 section 4.1.1;
// a run of them counts as one). Other white space, such as a no-break
// space (U+00A0) that strings.Fields would split at, is part of a
// parameter.
func (c *Command) Args() []string {
	return strings.FieldsFunc(c.Params, func(r rune) bool { return r == ' ' })
}

// ReadCommand reads one command. Errors are *Error (the client sent
// something wrong; unless Fatal the line has been consumed and the next
// command can be read) or I/O errors (io.EOF when the client closed the
// connection between commands). A line over the limit is a fatal "500
// 5.5.2 Line too long" returned as soon as the limit is passed, without
// waiting for its end.
func (r *Reader) ReadCommand() (*Command, error) {
	raw, err := readLine(r.br, r.commandLimit)
	if err == errLineTooLong {
		e := syntaxError("Line too long (limit %d octets)", r.commandLimit(raw)+2)
		e.Fatal = true
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	if e := r.checkEOL(raw); e != nil {
		return nil, e
	}
	return parseCommand(trimEOL(raw))
}

func (r *Reader) checkEOL(raw []byte) *Error {
	if !r.AllowBareLF && !bytes.HasSuffix(raw, []byte("\r\n")) {
		return syntaxError("Bare LF is not a line end (RFC 5321 section 2.3.8)")
	}
	return nil
}

// parseCommand: a verb of letters, digits and "-" (RFC 5321 section 4.1;
// extension verbs such as STARTTLS and XCLIENT are longer than four),
// then SP and the parameters. Control characters are refused anywhere;
// 8-bit octets are let through for SMTPUTF8 (RFC 6531).
func parseCommand(line []byte) (*Command, error) {
	if len(line) == 0 {
		return nil, syntaxError("Empty command")
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return nil, syntaxError("Invalid character 0x%02x in command", c)
		}
	}
	verb, params, _ := bytes.Cut(line, []byte(" "))
	if !validVerb(verb) {
		return nil, syntaxError("Syntax error, command unrecognized")
	}
	return &Command{Verb: strings.ToUpper(string(verb)), Params: string(params)}, nil
}

func validVerb(v []byte) bool {
	if len(v) == 0 || len(v) > maxVerb || !isAlpha(v[0]) {
		return false
	}
	for _, c := range v {
		if !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ReadAuthLine reads one client line of an AUTH exchange (RFC 4954
// section 4) without its CRLF: base64 data, or "*" to cancel (see
// DecodeResponse). A line over MaxAuthLine is a fatal "500 5.5.6
// Authentication Exchange line is too long" (RFC 4954 sections 4 and 6)
// as soon as the limit is passed.
func (r *Reader) ReadAuthLine() ([]byte, error) {
	limit := orDefault(r.MaxAuthLine, DefaultMaxAuthLine)
	raw, err := readLine(r.br, fixed(limit-2))
	if err == errLineTooLong {
		return nil, &Error{Code: 500, Enhanced: "5.5.6", Fatal: true,
			Text: fmt.Sprintf("Authentication Exchange line is too long (limit %d octets)", limit)}
	}
	if err != nil {
		return nil, err
	}
	if e := r.checkEOL(raw); e != nil {
		return nil, e
	}
	return trimEOL(raw), nil
}

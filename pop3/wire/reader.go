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
	// DefaultMaxLine is the longest command line: RFC 2449 section 4.
	DefaultMaxLine = 255
	// DefaultMaxSASLLine is the longest SASL response line. RFC 5034
	// section 4 asks only that lines as long as the mechanisms need be
	// taken; 12288 octets is the figure of RFC 4954 section 4.
	DefaultMaxSASLLine = 12288
)

// Reader reads client commands and SASL responses from a buffered
// connection. Set the fields before the first call; zero limits mean the
// defaults.
type Reader struct {
	br *bufio.Reader

	MaxLine int // octets of a command line, CRLF included
	// MaxAuthLine is the limit for an AUTH command line, initial
	// response included; 0 means MaxLine (RFC 5034 section 4 keeps the
	// AUTH line to RFC 2449's 255 octets). Raise it for clients that send
	// long initial responses anyway.
	MaxAuthLine int
	MaxSASLLine int // octets of a SASL response line, CRLF included
	// XClient lets the keyword XCLIENT through (Dovecot's, longer than
	// RFC 2449's four octets; see ParseXClient), its line within
	// MaxAuthLine: set it for a client the server trusts. Else XCLIENT is
	// an invalid keyword like any other.
	XClient bool
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

func (r *Reader) maxAuthLine() int { return orDefault(r.MaxAuthLine, r.maxLine()) }

// commandLimit is the readLine limit (CRLF not counted) for a command
// line, once its keyword tells whether it is AUTH (or, from a trusted
// proxy, XCLIENT, which may carry Dovecot's FORWARD fields: it has the
// AUTH line's limit).
func (r *Reader) commandLimit(sofar []byte) int {
	line, auth := r.maxLine(), r.maxAuthLine()
	if line == auth {
		return line - 2
	}
	for _, long := range []string{"AUTH ", "XCLIENT "} {
		if long == "XCLIENT " && !r.XClient {
			continue
		}
		n := min(len(sofar), len(long))
		if bytes.EqualFold(sofar[:n], []byte(long[:n])) {
			if n < len(long) {
				return max(line, auth) - 2 // cannot tell yet
			}
			return auth - 2
		}
	}
	return line - 2
}

// Buffered returns the number of bytes read from the connection but not
// yet consumed: after STLS these are pipelined bytes that must never be
// executed (RFC 2595 section 4).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Command is a client command as read by ReadCommand.
type Command struct {
	Name string   // the keyword, upper case
	Args []string // the parameters, split at spaces
	// Rest is everything after the keyword and its space, as sent: the
	// argument of PASS, which may hold spaces.
	Rest string
}

// ReadCommand reads one command. Errors are *Error (the client sent
// something wrong; unless Fatal the line has been consumed and the next
// command can be read) or I/O errors (io.EOF when the client closed the
// connection between commands). A line over the limit is a fatal *Error
// returned as soon as the limit is passed, without waiting for its end.
func (r *Reader) ReadCommand() (*Command, error) {
	raw, err := readLine(r.br, r.commandLimit)
	if err == errLineTooLong {
		return nil, &Error{Fatal: true,
			Text: fmt.Sprintf("Command line too long (limit %d octets)", r.commandLimit(raw)+2)}
	}
	if err != nil {
		return nil, err
	}
	return parseCommand(trimEOL(raw), r.XClient)
}

// isControl reports a byte no command line may hold: RFC 2449 allows
// VCHAR and SP (and 8-bit octets are let through, see parseCommand).
func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// CanCarry reports whether s can stand in a command line (PASS's
// argument, say): it holds no byte ReadCommand refuses.
func CanCarry(s string) bool {
	for i := 0; i < len(s); i++ {
		if isControl(s[i]) {
			return false
		}
	}
	return true
}

// parseCommand: RFC 2449 section 3, command = keyword *(SP param) CRLF,
// keyword = 3*4VCHAR, param = 1*VCHAR; 8-bit octets are let through for
// UTF-8 names (RFC 6856), runs of spaces tolerated. With xclient, the
// keyword may also be XCLIENT.
func parseCommand(line []byte, xclient bool) (*Command, error) {
	if len(line) == 0 {
		return nil, refuse("Empty command")
	}
	for _, c := range line {
		if isControl(c) {
			return nil, refuse("Invalid character 0x%02x in command", c)
		}
	}
	name, rest, _ := bytes.Cut(line, []byte(" "))
	if (len(name) < 3 || len(name) > 4) && !(xclient && bytes.EqualFold(name, []byte("XCLIENT"))) {
		return nil, refuse("Invalid command keyword")
	}
	for _, c := range name {
		if c > 0x7e {
			return nil, refuse("Invalid command keyword")
		}
	}
	cmd := &Command{Name: strings.ToUpper(string(name)), Rest: string(rest)}
	cmd.Args = strings.FieldsFunc(cmd.Rest, func(r rune) bool { return r == ' ' })
	return cmd, nil
}

// ReadSASLResponse reads one line of an AUTH exchange (RFC 5034 section
// 4) without its CRLF: base64 data, or "*" to cancel (see DecodeResponse).
// A line over MaxSASLLine is a fatal *Error as soon as the limit is
// passed.
func (r *Reader) ReadSASLResponse() ([]byte, error) {
	limit := orDefault(r.MaxSASLLine, DefaultMaxSASLLine)
	raw, err := readLine(r.br, fixed(limit-2))
	if err == errLineTooLong {
		return nil, &Error{Fatal: true, Text: fmt.Sprintf("SASL response too long (limit %d octets)", limit)}
	}
	if err != nil {
		return nil, err
	}
	return trimEOL(raw), nil
}

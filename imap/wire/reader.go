package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/internal/ascii"
	"github.com/pipegate/pipegate/internal/lineio"
)

// Defaults used when the Reader's limits are zero.
const (
	DefaultMaxLine     = 8192     // bytes of command text, literals excluded
	DefaultMaxLiteral  = 64 << 10 // bytes per literal
	DefaultMaxLiterals = 8        // literals per command
	// LiteralMinusMax is the largest non-synchronizing literal a client may
	// send to a server that advertises LITERAL- (RFC 7888 section 3).
	LiteralMinusMax = 4096
	maxDepth        = 8 // nesting of parenthesized lists
)

// Reader reads client commands from a buffered connection. Set the fields
// before the first call; the zero limits mean the defaults above.
type Reader struct {
	br *bufio.Reader

	MaxLine     int   // total bytes of command text outside literals
	MaxLiteral  int64 // bytes per literal
	MaxLiterals int   // literals per command
	// LiteralMinus limits non-synchronizing literals to LiteralMinusMax
	// bytes: set it when the server advertises LITERAL- rather than LITERAL+.
	LiteralMinus bool
	// Continue is called before the bytes of a synchronizing literal {n}
	// are read: it must send the client a "+ " continuation request. When
	// nil, synchronizing literals are refused.
	Continue func(n int64) error
}

// NewReader returns a Reader on br with default limits.
func NewReader(br *bufio.Reader) *Reader { return &Reader{br: br} }

func (r *Reader) maxLine() int {
	if r.MaxLine > 0 {
		return r.MaxLine
	}
	return DefaultMaxLine
}

func (r *Reader) maxLiteral() int64 {
	if r.MaxLiteral > 0 {
		return r.MaxLiteral
	}
	return DefaultMaxLiteral
}

func (r *Reader) maxLiterals() int {
	if r.MaxLiterals > 0 {
		return r.MaxLiterals
	}
	return DefaultMaxLiterals
}

// ReadCommand reads one command. Errors are either *Error (the client sent
// something wrong; unless Fatal, the whole command has been consumed and the
// next one can be read) or I/O errors (io.EOF when the client closed the
// connection between commands). Command text over MaxLine, and a
// non-synchronizing literal over MaxLiteral, are fatal TOOBIG errors,
// returned as soon as the limit is passed or the literal announced: the
// Reader never waits for the rest of an over-long line.
func (r *Reader) ReadCommand() (*Command, error) {
	p := &parser{r: r, budget: r.maxLine()}
	line, err := p.nextLine(true)
	if err != nil {
		return nil, err
	}
	p.line = line
	cmd, err := p.command()
	if err != nil {
		var we *Error
		if errors.As(err, &we) {
			if we.Tag == "" {
				we.Tag = p.tag
			}
			if !we.Fatal && !p.consumed {
				if serr := p.skipRest(); serr != nil {
					return nil, serr
				}
			}
		}
		return nil, err
	}
	return cmd, nil
}

// ReadLine reads one line of at most MaxLine bytes (such as a SASL response
// during AUTHENTICATE) without its CRLF. A longer line yields a fatal TOOBIG
// *Error as soon as MaxLine bytes have come without a line end.
func (r *Reader) ReadLine() ([]byte, error) {
	p := &parser{r: r, budget: r.maxLine()}
	line, err := p.nextLine(false)
	if err != nil {
		var we *Error
		if errors.As(err, &we) {
			we.Fatal = true
		}
		return nil, err
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return nil, &Error{Text: "NUL byte in line", Fatal: true}
	}
	return line, nil
}

// Buffered returns the number of bytes read from the connection but not yet
// consumed.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// parser holds the state of one command being read.
type parser struct {
	r        *Reader
	line     []byte // current line without CRLF
	pos      int
	budget   int // text bytes left
	literals int
	tag      string
	// consumed is set once the whole command has been read from the
	// connection (or nothing more of it will come), so that skipRest is a
	// no-op.
	consumed bool
}

// nextLine reads the next line within the text budget. A line over the
// budget is a fatal TOOBIG *Error, returned as soon as the budget is passed:
// the client may never send the newline, and waiting for it would leave
// the client without an answer (and the connection open) until a timeout.
func (p *parser) nextLine(first bool) ([]byte, error) {
	buf, err := lineio.ReadLine(p.r.br, lineio.Fixed(p.budget))
	if errors.Is(err, lineio.ErrTooLong) {
		if first {
			p.tag = leadingTag(buf)
		}
		p.consumed = true
		return nil, &Error{Tag: p.tag, Code: "TOOBIG", Fatal: true,
			Text: fmt.Sprintf("Command line too long (limit %d bytes)", p.r.maxLine())}
	}
	if err != nil {
		return nil, err
	}
	line := lineio.TrimEOL(buf)
	p.budget -= len(line)
	return line, nil
}

// leadingTag extracts a plausible tag from the start of a line for error
// responses, or "".
func leadingTag(b []byte) string {
	i := 0
	for i < len(b) && i < 64 && isTagChar(b[i]) {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return ""
	}
	return string(b[:i])
}

// skipRest discards what is left of a command after a syntax error: the
// rest of the current line is already read; if it announced a
// non-synchronizing literal, the client is sending it (and more lines of the
// same command), so those are read and dropped too. A synchronizing literal
// is never sent before our "+", so the command ends there.
func (p *parser) skipRest() error {
	p.consumed = true
	return p.skipAfter(p.line)
}

func (p *parser) skipAfter(line []byte) error {
	for i := 0; ; i++ {
		n, nonSync, ok := literalAtEnd(line)
		if !ok || !nonSync {
			return nil
		}
		if i >= p.r.maxLiterals() || n > p.r.maxLiteral() {
			return &Error{Tag: p.tag, Code: "TOOBIG", Text: "Literal too big to skip", Fatal: true}
		}
		if _, err := io.CopyN(io.Discard, p.r.br, n); err != nil {
			return lineio.ReadErr(err, 1)
		}
		// The command goes on after the literal: read that line too.
		sub := &parser{r: p.r, budget: p.r.maxLine()}
		next, err := sub.nextLine(false)
		if err != nil {
			var we *Error
			if errors.As(err, &we) {
				we.Tag, we.Fatal = p.tag, true
			}
			return err
		}
		line = next
	}
}

// literalAtEnd finds a literal announcement {n} or {n+} ending line.
func literalAtEnd(line []byte) (n int64, nonSync, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false
	}
	num := line[open+1 : len(line)-1]
	if len(num) > 0 && num[len(num)-1] == '+' {
		nonSync = true
		num = num[:len(num)-1]
	}
	n, ok = literalSize(num)
	return n, nonSync, ok
}

// literalSize parses a literal's size: a number64 of RFC 9051, one too big
// to hold being math.MaxInt64, over any limit. (Refusing it as a bad size
// instead would let the bytes of a non-synchronizing literal, already on
// their way, be read as commands.)
func literalSize(num []byte) (int64, bool) {
	if !ascii.Digits(num) {
		return 0, false
	}
	n, err := parseNumber(num)
	if err != nil {
		return math.MaxInt64, true
	}
	return n, true
}

// parseNumber parses an IMAP number (digits only, fits in 63 bits).
func parseNumber(b []byte) (int64, error) {
	if len(b) > 18 || !ascii.Digits(b) {
		return 0, errors.New("bad number")
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (p *parser) bad(format string, args ...any) *Error {
	return &Error{Tag: p.tag, Text: fmt.Sprintf(format, args...)}
}

func (p *parser) command() (*Command, error) {
	if len(p.line) == 0 {
		p.consumed = true
		return nil, p.bad("Empty command line")
	}
	start := p.pos
	for p.pos < len(p.line) && isTagChar(p.line[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return nil, p.bad("Missing or invalid tag")
	}
	p.tag = string(p.line[start:p.pos])
	if bytes.IndexByte(p.line, 0) >= 0 {
		return nil, p.bad("NUL byte in command")
	}
	if p.pos == len(p.line) {
		return nil, p.bad("Missing command name after tag")
	}
	if p.line[p.pos] != ' ' {
		p.tag = ""
		return nil, p.bad("Invalid character %s in tag", quoteByte(p.line[p.pos]))
	}
	p.pos++
	start = p.pos
	for p.pos < len(p.line) && isAtomChar(p.line[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return nil, p.bad("Missing command name")
	}
	cmd := &Command{Tag: p.tag, Name: ascii.Upper(string(p.line[start:p.pos]))}
	args, err := p.values(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.line) {
		return nil, p.bad("Unexpected %s", quoteByte(p.line[p.pos]))
	}
	p.consumed = true
	cmd.Args = args
	return cmd, nil
}

// values reads space-separated values up to the end of the line (depth 0)
// or the closing parenthesis (depth > 0, not consumed).
func (p *parser) values(depth int) ([]Value, error) {
	var out []Value
	first := depth > 0
	for {
		if !first {
			if p.pos >= len(p.line) {
				return out, nil
			}
			if p.line[p.pos] == ')' {
				if depth > 0 {
					return out, nil
				}
				return nil, p.bad("Unexpected ')'")
			}
			if p.line[p.pos] != ' ' {
				return nil, p.bad("Expected space, got %s", quoteByte(p.line[p.pos]))
			}
			for p.pos < len(p.line) && p.line[p.pos] == ' ' {
				p.pos++
			}
			if p.pos >= len(p.line) {
				return out, nil // tolerate trailing spaces
			}
		}
		first = false
		if p.pos < len(p.line) && p.line[p.pos] == ')' {
			if depth > 0 {
				return out, nil
			}
			return nil, p.bad("Unexpected ')'")
		}
		if p.pos >= len(p.line) {
			return nil, p.bad("Missing ')'")
		}
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if len(out) > 64 {
			return nil, p.bad("Too many arguments")
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	switch c := p.line[p.pos]; c {
	case '"':
		return p.quoted()
	case '{':
		return p.literal()
	case '(':
		if depth+1 > maxDepth {
			return Value{}, p.bad("Lists nested too deeply")
		}
		p.pos++
		list, err := p.values(depth + 1)
		if err != nil {
			return Value{}, err
		}
		if p.pos >= len(p.line) || p.line[p.pos] != ')' {
			return Value{}, p.bad("Missing ')'")
		}
		p.pos++
		if list == nil {
			list = []Value{}
		}
		return Value{Kind: KindList, List: list}, nil
	default:
		start := p.pos
		for p.pos < len(p.line) {
			c := p.line[p.pos]
			if c == ' ' || c == '(' || c == ')' {
				break
			}
			if !isAtomChar(c) && c != ']' && c != '%' && c != '*' && c != '\\' {
				return Value{}, p.bad("Invalid character %s in atom", quoteByte(c))
			}
			p.pos++
		}
		if p.pos == start {
			return Value{}, p.bad("Invalid character %s", quoteByte(c))
		}
		return Value{Kind: KindAtom, Str: string(p.line[start:p.pos])}, nil
	}
}

func (p *parser) quoted() (Value, error) {
	p.pos++ // opening quote
	var sb strings.Builder
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		p.pos++
		switch c {
		case '"':
			return Value{Kind: KindQuoted, Str: sb.String()}, nil
		case '\\':
			if p.pos >= len(p.line) {
				return Value{}, p.bad("Quoted string ends with a backslash")
			}
			e := p.line[p.pos]
			if e != '"' && e != '\\' {
				return Value{}, p.bad("Invalid escape \\%c in quoted string (only \\\" and \\\\)", printable(e))
			}
			sb.WriteByte(e)
			p.pos++
		case '\r': // TEXT-CHAR excludes CR (RFC 9051); LF ends the line
			return Value{}, p.bad("Invalid byte 0x0d in quoted string")
		default:
			sb.WriteByte(c)
		}
	}
	return Value{}, p.bad("Unterminated quoted string")
}

// literal reads {n} or {n+}, which must end the line, then the n bytes and
// the next line, on which the command continues.
func (p *parser) literal() (Value, error) {
	open := p.pos
	end := bytes.IndexByte(p.line[open:], '}')
	if end < 0 {
		return Value{}, p.bad("Unterminated literal size")
	}
	end += open
	if end != len(p.line)-1 {
		return Value{}, p.bad("Literal size must end the line")
	}
	num := p.line[open+1 : end]
	nonSync := false
	if len(num) > 0 && num[len(num)-1] == '+' {
		nonSync, num = true, num[:len(num)-1]
	}
	n, ok := literalSize(num)
	if !ok {
		return Value{}, p.bad("Invalid literal size %q", num)
	}
	p.literals++
	if p.literals > p.r.maxLiterals() {
		return Value{}, p.bad("Too many literals in one command")
	}
	// From here on, the line has been fully looked at: on any error the
	// client either waits for our "+" (synchronizing) or is sending n
	// bytes (non-synchronizing), which skipRest handles.
	if nonSync && p.r.LiteralMinus && n > LiteralMinusMax {
		p.consumed = true
		return Value{}, &Error{Tag: p.tag, Code: "TOOBIG",
			Text: fmt.Sprintf("Non-synchronizing literal over %d bytes (LITERAL-)", LiteralMinusMax), Fatal: true}
	}
	if n > p.r.maxLiteral() {
		p.consumed = true
		return Value{}, &Error{Tag: p.tag, Code: "TOOBIG",
			Text: fmt.Sprintf("Literal of %s bytes is over the limit of %d", num, p.r.maxLiteral()), Fatal: nonSync}
	}
	if !nonSync {
		if p.r.Continue == nil {
			p.consumed = true
			return Value{}, p.bad("Synchronizing literals are not accepted here")
		}
		if err := p.r.Continue(n); err != nil {
			return Value{}, fmt.Errorf("imap: continuation request: %w", err)
		}
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(p.r.br, data); err != nil {
		return Value{}, lineio.ReadErr(err, 1)
	}
	line, err := p.nextLine(false)
	if err != nil {
		var we *Error
		if errors.As(err, &we) {
			we.Tag = p.tag
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		p.consumed = true
		return Value{}, err
	}
	// NUL is checked per line: the command's first line was checked.
	if bytes.IndexByte(line, 0) >= 0 {
		p.line, p.pos = line, len(line)
		return Value{}, p.bad("NUL byte in command")
	}
	p.line, p.pos = line, 0
	return Value{Kind: KindLiteral, Str: string(data), NonSync: nonSync}, nil
}

// isAtomChar: ATOM-CHAR of RFC 9051 (any CHAR except atom-specials), with
// 8-bit bytes tolerated.
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x1f && c != 0x7f
}

// isTagChar: ASTRING-CHAR except "+".
func isTagChar(c byte) bool { return c == ']' || c != '+' && isAtomChar(c) }

func printable(c byte) byte {
	if c < 0x20 || c >= 0x7f {
		return '?'
	}
	return c
}

func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", string(c))
}

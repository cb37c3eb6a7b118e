package wire

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/pipegate/pipegate/internal/ascii"
)

// Defaults used when the Reader's limits are zero; RFC 5804 sets none.
const (
	DefaultMaxLine     = 8192  // octets of command text, literals and CRLFs excluded
	DefaultMaxLiteral  = 12288 // octets per literal: RFC 4954's figure for SASL data
	DefaultMaxLiterals = 4     // literals per command
	// MaxQuoted is the most octets between the quotes of a quoted
	// string (RFC 5804 section 4), but for SASL data (see ReadCommand).
	MaxQuoted = 1024
	maxDepth  = 8  // nesting of parenthesized lists in response codes
	maxValues = 64 // values per command or response
)

// Reader reads client commands from a buffered connection. Set the fields
// before the first call; zero limits mean the defaults.
type Reader struct {
	br *bufio.Reader

	MaxLine     int   // octets of command text outside literals, CRLFs excluded
	MaxLiteral  int64 // octets per literal
	MaxLiterals int   // literals per command
}

// NewReader returns a Reader on br with the default limits.
func NewReader(br *bufio.Reader) *Reader { return &Reader{br: br} }

func (r *Reader) limits() limits {
	l := limits{line: r.MaxLine, literal: r.MaxLiteral, literals: r.MaxLiterals}
	if l.line <= 0 {
		l.line = DefaultMaxLine
	}
	if l.literal <= 0 {
		l.literal = DefaultMaxLiteral
	}
	if l.literals <= 0 {
		l.literals = DefaultMaxLiterals
	}
	return l
}

// Buffered returns the number of bytes read from the connection but not
// yet consumed: after STARTTLS these are pipelined bytes that must never
// be executed.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadCommand reads one command. Errors are *Error (the client sent
// something wrong; unless Fatal, the whole command has been consumed and
// the next one can be read) or I/O errors (io.EOF when the client closed
// the connection between commands). Command text over MaxLine and a
// literal over MaxLiteral are fatal, returned as soon as the limit is
// passed or the literal announced: the Reader never waits for the rest of
// an over-long line.
//
// SASL data may be a quoted string longer than MaxQuoted, within MaxLine:
// the arguments of AUTHENTICATE here, the answers ReadString reads. Clients
// send OAuth tokens of some KiB so (a quoted initial response of
// AUTHENTICATE "XOAUTH2"), and Dovecot takes them.
func (r *Reader) ReadCommand() (*Command, error) {
	p := &parser{br: r.br, lim: r.limits()}
	p.budget = p.lim.line
	if err := p.firstLine(); err != nil {
		return nil, err
	}
	cmd, err := p.command()
	if err != nil {
		return nil, p.finish(err)
	}
	return cmd, nil
}

// ReadString reads one string on a line of its own: the client's answer
// to a SASL challenge during AUTHENTICATE (RFC 5804 section 2.1), "*" to
// cancel. Errors are as for ReadCommand; a quoted string may be as long
// as the line (SASL data).
func (r *Reader) ReadString() (Value, error) {
	p := &parser{br: r.br, lim: r.limits()}
	p.budget = p.lim.line
	p.maxQuoted = p.lim.line
	if err := p.firstLine(); err != nil {
		return Value{}, err
	}
	vs, err := p.values(0, false)
	if err == nil && (len(vs) != 1 || !vs[0].IsString()) {
		err = refuse("Expected one string")
	}
	if err != nil {
		return Value{}, p.finish(err)
	}
	return vs[0], nil
}

type limits struct {
	line     int
	literal  int64
	literals int
}

// parser holds the state of one command or response being read.
type parser struct {
	br       *bufio.Reader
	lim      limits
	line     []byte // current line without its line end
	pos      int
	budget   int // text octets left
	literals int
	// maxQuoted is the longest quoted string: MaxQuoted when 0, the
	// line's limit for SASL data.
	maxQuoted int
	// consumed is set once the whole command has been read from the
	// connection (or nothing more of it will come), so that finish need
	// not skip.
	consumed bool
}

func (p *parser) firstLine() error {
	line, err := p.nextLine()
	if err != nil {
		return err
	}
	p.line, p.pos = line, 0
	return nil
}

// finish completes a failed read: a non-fatal *Error first skips what is
// left of the command.
func (p *parser) finish(err error) error {
	var we *Error
	if errors.As(err, &we) && !we.Fatal && !p.consumed {
		if serr := p.skipRest(); serr != nil {
			return serr
		}
	}
	return err
}

// nextLine reads the next line within the text budget; a line over it is
// a fatal *Error as soon as the budget is passed.
func (p *parser) nextLine() ([]byte, error) {
	buf, err := readLine(p.br, fixed(p.budget))
	if err == errLineTooLong {
		p.consumed = true
		return nil, &Error{Fatal: true, Text: fmt.Sprintf("Command line too long (limit %d octets)", p.lim.line)}
	}
	if err != nil {
		return nil, err
	}
	line := trimEOL(buf)
	p.budget -= len(line)
	return line, nil
}

// skipRest discards what is left of a command after an error: the rest
// of the current line is read; if it announced a literal, its bytes
// follow (ManageSieve has no continuation request to wait for), and the
// command goes on after them.
func (p *parser) skipRest() error {
	p.consumed = true
	line := p.line
	for i := 0; ; i++ {
		n, _, ok := literalAtEnd(line)
		if !ok {
			return nil
		}
		if i >= p.lim.literals || n > p.lim.literal {
			return &Error{Fatal: true, Text: "Literal too big to skip"}
		}
		if _, err := io.CopyN(io.Discard, p.br, n); err != nil {
			return readErr(err, 1)
		}
		next, err := p.nextLine()
		if err != nil {
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
		nonSync, num = true, num[:len(num)-1]
	}
	n, err := parseNumber(num)
	if err != nil {
		if !ascii.Digits(num) {
			return 0, false, false
		}
		// Digits, but over 32 bits: over any limit. Its bytes are on
		// their way and must never be read as commands.
		return math.MaxInt64, nonSync, true
	}
	return n, nonSync, true
}

// parseNumber: number = 1*DIGIT, a 32-bit unsigned number (RFC 5804
// section 4).
func parseNumber(b []byte) (int64, error) {
	if len(b) > 10 || !ascii.Digits(b) {
		return 0, errors.New("bad number")
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n > 1<<32-1 {
		return 0, errors.New("bad number")
	}
	return n, nil
}

func (p *parser) command() (*Command, error) {
	if len(p.line) == 0 {
		p.consumed = true
		return nil, refuse("Empty command")
	}
	start := p.pos
	for p.pos < len(p.line) && isAtomChar(p.line[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return nil, refuse("Missing command name")
	}
	cmd := &Command{Name: upper(string(p.line[start:p.pos]))}
	if cmd.Name == "AUTHENTICATE" {
		p.maxQuoted = p.lim.line // SASL data: an OAuth token in a quoted string
	}
	args, err := p.values(0, false)
	if err != nil {
		return nil, err
	}
	p.consumed = true
	cmd.Args = args
	return cmd, nil
}

// values reads space-separated values up to the end of the command
// (depth 0) or the closing parenthesis (depth > 0, not consumed). When
// leading is false, a space must come before the first value. Lists are
// read only where lists is set (response codes).
func (p *parser) values(depth int, lists bool) ([]Value, error) {
	var out []Value
	first := p.pos == 0 || depth > 0
	for {
		if p.pos >= len(p.line) {
			if depth > 0 {
				return nil, refuse("Missing ')'")
			}
			return out, nil
		}
		if p.line[p.pos] == ')' {
			if depth > 0 {
				return out, nil
			}
			return nil, refuse("Unexpected ')'")
		}
		if !first {
			if p.line[p.pos] != ' ' {
				return nil, refuse("Expected space, got %s", quoteByte(p.line[p.pos]))
			}
			p.pos++
			if p.pos >= len(p.line) && depth == 0 {
				return out, nil // tolerate one trailing space
			}
			if p.pos >= len(p.line) || p.line[p.pos] == ' ' || p.line[p.pos] == ')' {
				return nil, refuse("Expected a value after a space")
			}
		}
		first = false
		v, err := p.value(depth, lists)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if len(out) > maxValues {
			return nil, refuse("Too many arguments")
		}
	}
}

func (p *parser) value(depth int, lists bool) (Value, error) {
	switch c := p.line[p.pos]; {
	case c == '"':
		return p.quoted()
	case c == '{':
		return p.literal()
	case c == '(' && lists:
		if depth+1 > maxDepth {
			return Value{}, refuse("Lists nested too deeply")
		}
		p.pos++
		list, err := p.values(depth+1, lists)
		if err != nil {
			return Value{}, err
		}
		p.pos++ // the ')' values stopped at
		if list == nil {
			list = []Value{}
		}
		return Value{Kind: KindList, List: list}, nil
	default:
		start := p.pos
		for p.pos < len(p.line) && isAtomChar(p.line[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return Value{}, refuse("Invalid character %s", quoteByte(c))
		}
		if p.pos-start > MaxQuoted {
			return Value{}, refuse("Atom longer than %d octets", MaxQuoted)
		}
		return Value{Kind: KindAtom, Str: string(p.line[start:p.pos])}, nil
	}
}

// quoted: DQUOTE *1024QUOTED-CHAR DQUOTE, QUOTED-CHAR = SAFE-UTF8-CHAR /
// "\" QUOTED-SPECIALS (RFC 5804 section 4).
func (p *parser) quoted() (Value, error) {
	p.pos++ // opening quote
	start := p.pos
	var s []byte
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		p.pos++
		switch {
		case c == '"':
			if limit := cmp.Or(p.maxQuoted, MaxQuoted); p.pos-1-start > limit {
				return Value{}, refuse("Quoted string longer than %d octets", limit)
			}
			if !utf8.Valid(s) {
				return Value{}, refuse("Invalid UTF-8 in quoted string")
			}
			return Value{Kind: KindQuoted, Str: string(s)}, nil
		case c == '\\':
			if p.pos >= len(p.line) {
				return Value{}, refuse("Quoted string ends with a backslash")
			}
			e := p.line[p.pos]
			if e != '"' && e != '\\' {
				return Value{}, refuse("Invalid escape in quoted string (only \\\" and \\\\)")
			}
			s = append(s, e)
			p.pos++
		case c == 0 || c == '\r' || c == '\n':
			return Value{}, refuse("Invalid %s in quoted string", quoteByte(c))
		default:
			s = append(s, c)
		}
	}
	return Value{}, refuse("Unterminated quoted string")
}

// literal reads {n+} or {n}, which must end the line, then the n octets
// and the next line, on which the command continues.
func (p *parser) literal() (Value, error) {
	open := p.pos
	end := bytes.IndexByte(p.line[open:], '}')
	if end < 0 {
		return Value{}, refuse("Unterminated literal size")
	}
	end += open
	if end != len(p.line)-1 {
		return Value{}, refuse("Literal size must end the line")
	}
	n, nonSync, ok := literalAtEnd(p.line[open:])
	if !ok {
		return Value{}, refuse("Invalid literal size")
	}
	p.literals++
	if p.literals > p.lim.literals {
		return Value{}, refuse("Too many literals in one command")
	}
	if n > p.lim.literal {
		// Its bytes are on their way: the stream cannot be followed.
		p.consumed = true
		return Value{}, &Error{Fatal: true, Text: fmt.Sprintf("Literal of %s octets is over the limit of %d", bytes.TrimSuffix(p.line[open+1:end], []byte("+")), p.lim.literal)}
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(p.br, data); err != nil {
		return Value{}, readErr(err, 1)
	}
	line, err := p.nextLine()
	if err != nil {
		p.consumed = true
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Value{}, err
	}
	p.line, p.pos = line, 0
	return Value{Kind: KindLiteral, Str: string(data), NonSync: nonSync}, nil
}

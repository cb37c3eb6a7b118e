package wire

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Response is one server response line: a status (OK, NO or BYE, with an
// optional response code and string), or a data line (a capability, a
// SASL challenge) whose strings are in Data.
type Response struct {
	Type string // "OK", "NO", "BYE"; "" for a data line
	// Code is the response code without parentheses and its data:
	// "TRYLATER", "SASL" with the server's last SASL data as a string,
	// "QUOTA/MAXSIZE", "REFERRAL" with a URL (RFC 5804 section 1.3).
	Code     string
	CodeArgs []Value
	Text     string  // the human-readable string, "" for none
	Data     []Value // a data line's items
}

// Append appends r as sent by a server. Text and string code data are
// written quoted when they can be, else as literals; a code that is not
// an atom is left out, and atoms in CodeArgs that are not atoms are
// written as strings, so that nothing given here can break the line.
func (r *Response) Append(dst []byte) []byte {
	if r.Type == "" {
		for i, v := range r.Data {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = appendValue(dst, v, 0)
		}
		return append(dst, "\r\n"...)
	}
	dst = append(dst, r.Type...)
	if isAtom(r.Code) {
		dst = append(dst, " ("...)
		dst = append(dst, r.Code...)
		for _, v := range r.CodeArgs {
			dst = append(dst, ' ')
			dst = appendValue(dst, v, 0)
		}
		dst = append(dst, ')')
	}
	if r.Text != "" {
		dst = append(dst, ' ')
		dst = AppendString(dst, r.Text)
	}
	return append(dst, "\r\n"...)
}

func appendValue(dst []byte, v Value, depth int) []byte {
	switch {
	case v.Kind == KindAtom && isAtom(v.Str):
		return append(dst, v.Str...)
	case v.Kind == KindList && depth < maxDepth:
		dst = append(dst, '(')
		for i, e := range v.List {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = appendValue(dst, e, depth+1)
		}
		return append(dst, ')')
	case v.Kind == KindList:
		return append(dst, "()"...)
	}
	return AppendString(dst, v.Str)
}

// Quotable reports whether s can be sent as a quoted string: UTF-8
// without NUL, CR or LF, at most MaxQuoted octets once escaped.
func Quotable(s string) bool {
	n := len(s) + strings.Count(s, `"`) + strings.Count(s, `\`)
	return n <= MaxQuoted && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\r\n")
}

// AppendString appends s as a server sends a string: quoted when
// Quotable, else a literal-s2c "{n}" CRLF and the octets.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, "}") }

// AppendClientString appends s as a client sends a string, to a backend:
// quoted when Quotable, else a literal-c2s "{n+}" CRLF and the octets.
func AppendClientString(dst []byte, s string) []byte { return appendString(dst, s, "+}") }

func appendString(dst []byte, s, close string) []byte {
	if Quotable(s) {
		dst = append(dst, '"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, s[i])
		}
		return append(dst, '"')
	}
	dst = append(dst, '{')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, close...)
	dst = append(dst, "\r\n"...)
	return append(dst, s...)
}

// Capability is one line of a capability response (RFC 5804 section
// 1.7): a name and its value, such as "SASL" with "PLAIN LOGIN".
type Capability struct {
	Name  string // upper case when read
	Value string // "" for none, as for STARTTLS
}

// Capabilities is a capability response, in the server's order.
type Capabilities []Capability

// Has reports whether caps holds name (case-insensitive).
func (caps Capabilities) Has(name string) bool {
	_, ok := caps.Value(name)
	return ok
}

// Value returns the value of name, and whether it is there.
func (caps Capabilities) Value(name string) (string, bool) {
	for _, c := range caps {
		if strings.EqualFold(c.Name, name) {
			return c.Value, true
		}
	}
	return "", false
}

// Append appends the capability lines, "NAME" SP "value" CRLF each; the
// caller ends the response with OK.
func (caps Capabilities) Append(dst []byte) []byte {
	for _, c := range caps {
		dst = AppendString(dst, c.Name)
		if c.Value != "" {
			dst = append(dst, ' ')
			dst = AppendString(dst, c.Value)
		}
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// ErrResponse marks a response that breaks RFC 5804 or is over a limit;
// errors from ReadResponse and ReadCapabilities wrap it.
var ErrResponse = errors.New("managesieve: bad response")

// Defaults for reading responses.
const (
	DefaultMaxResponse = 64 << 10 // octets of one response line, literals included
	DefaultMaxCapLines = 100      // lines of a capability response
)

// ReadResponse reads one response line from a server with the literals
// it holds: at most max octets of text (0: DefaultMaxResponse), and at
// most DefaultMaxLiterals literals of max octets each. An over-long line
// is refused as soon as the limit is passed, a literal over it as soon as
// it is announced.
func ReadResponse(br *bufio.Reader, max int) (*Response, error) {
	if max <= 0 {
		max = DefaultMaxResponse
	}
	p := &parser{br: br, lim: limits{line: max, literal: int64(max), literals: DefaultMaxLiterals}, budget: max}
	if err := p.firstLine(); err != nil {
		return nil, wrapResponse(err)
	}
	r, err := p.response()
	if err != nil {
		return nil, wrapResponse(err)
	}
	return r, nil
}

func wrapResponse(err error) error {
	var we *Error
	if errors.As(err, &we) {
		return fmt.Errorf("%w: %s", ErrResponse, we.Text)
	}
	return err
}

// response: response-oknobye = ("OK" / "NO" / "BYE") [SP "(" resp-code
// ")"] [SP string], or a line of strings (single-capability, a SASL
// challenge).
func (p *parser) response() (*Response, error) {
	if len(p.line) == 0 {
		return nil, refuse("Empty response line")
	}
	vs, err := p.values(0, true)
	if err != nil {
		return nil, err
	}
	p.consumed = true
	r := &Response{}
	if len(vs) == 0 || vs[0].Kind != KindAtom {
		for _, v := range vs {
			if !v.IsString() {
				return nil, refuse("Data line item is an %s, want a string", v.Kind)
			}
		}
		r.Data = vs
		return r, nil
	}
	r.Type = upper(vs[0].Str)
	if r.Type != "OK" && r.Type != "NO" && r.Type != "BYE" {
		return nil, refuse("Unknown response %q", vs[0].Str)
	}
	vs = vs[1:]
	if len(vs) > 0 && vs[0].Kind == KindList {
		code := vs[0].List
		if len(code) == 0 || code[0].Kind != KindAtom {
			return nil, refuse("Response code without a name")
		}
		r.Code, r.CodeArgs = upper(code[0].Str), code[1:]
		vs = vs[1:]
	}
	if len(vs) > 0 {
		if !vs[0].IsString() {
			return nil, refuse("Response text is an %s, want a string", vs[0].Kind)
		}
		r.Text = vs[0].Str
		vs = vs[1:]
	}
	if len(vs) > 0 {
		return nil, refuse("Unexpected items after the response text")
	}
	return r, nil
}

// ReadCapabilities reads a capability response (the greeting, or the
// answer to CAPABILITY or STARTTLS): capability lines up to the status
// response that ends it, which is returned too. Each line is at most
// maxLine octets (0: DefaultMaxResponse), at most maxLines capabilities
// (0: DefaultMaxCapLines).
func ReadCapabilities(br *bufio.Reader, maxLine, maxLines int) (Capabilities, *Response, error) {
	if maxLines <= 0 {
		maxLines = DefaultMaxCapLines
	}
	var caps Capabilities
	for {
		r, err := ReadResponse(br, maxLine)
		if err != nil {
			if len(caps) > 0 {
				err = readErr(err, 1)
			}
			return nil, nil, err
		}
		if r.Type != "" {
			return caps, r, nil
		}
		if len(r.Data) == 0 || len(r.Data) > 2 {
			return nil, nil, fmt.Errorf("%w: capability line with %d strings", ErrResponse, len(r.Data))
		}
		if len(caps) >= maxLines {
			return nil, nil, fmt.Errorf("%w: more than %d capabilities", ErrResponse, maxLines)
		}
		c := Capability{Name: upper(r.Data[0].Str)}
		if len(r.Data) == 2 {
			c.Value = r.Data[1].Str
		}
		caps = append(caps, c)
	}
}

// Challenge returns the SASL challenge a data line carries during
// AUTHENTICATE (a single string), and whether it is one.
func (r *Response) Challenge() (string, bool) {
	if r.Type != "" || len(r.Data) != 1 {
		return "", false
	}
	return r.Data[0].Str, true
}

// SASLData returns the data of an OK (SASL
// "...") response code, and whether there is one.
func (r *Response) SASLData() (string, bool) {
	if r.Code != "SASL" || len(r.CodeArgs) != 1 || !r.CodeArgs[0].IsString() {
		return "", false
	}
	return r.CodeArgs[0].Str, true
}

package wire

import (
	"fmt"
	"strings"
)

// Kind says how a Value was written on the wire.
type Kind int

const (
	KindAtom    Kind = iota // a bare atom: a command name, a number
	KindQuoted              // "a quoted string"
	KindLiteral             // {n+} or {n} followed by n octets
	KindList                // ( ... ), only in a response code's data
)

func (k Kind) String() string {
	switch k {
	case KindAtom:
		return "atom"
	case KindQuoted:
		return "quoted string"
	case KindLiteral:
		return "literal"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Value is one argument of a command or item of a response.
type Value struct {
	Kind    Kind
	Str     string  // the atom, or the string's contents (unescaped)
	List    []Value // for KindList
	NonSync bool    // a literal sent as {n+}
}

// IsString reports whether v is a quoted string or a literal.
func (v Value) IsString() bool { return v.Kind == KindQuoted || v.Kind == KindLiteral }

// Command is a client command as read by Reader.ReadCommand.
type Command struct {
	Name string // upper case
	Args []Value
}

// Strings returns the arguments, which must all be strings (RFC 5804
// section 4: AUTHENTICATE's mechanism and data are strings), when there
// are from min to max of them; else a non-fatal NO naming the problem.
func (c *Command) Strings(min, max int) ([]string, error) {
	if len(c.Args) < min || len(c.Args) > max {
		if min == max {
			return nil, refuse("%s takes %d arguments, got %d", c.Name, min, len(c.Args))
		}
		return nil, refuse("%s takes %d to %d arguments, got %d", c.Name, min, max, len(c.Args))
	}
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		if !a.IsString() {
			return nil, refuse("%s: argument %d is an %s, want a string", c.Name, i+1, a.Kind)
		}
		out[i] = a.Str
	}
	return out, nil
}

// Error is what a client sent wrong, with the response to give it:
// NO (CODE) "Text" or, when Fatal, BYE (CODE) "Text", after which the
// connection is closed because the byte stream can no longer be followed.
type Error struct {
	Code  string // response code without parentheses, or ""
	Text  string
	Fatal bool
}

func (e *Error) Error() string {
	s := "managesieve: refused command"
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	s += ": " + e.Text
	if e.Fatal {
		s += " (fatal)"
	}
	return s
}

// Reply returns the response for e.
func (e *Error) Reply() []byte {
	typ := "NO"
	if e.Fatal {
		typ = "BYE"
	}
	return (&Response{Type: typ, Code: e.Code, Text: e.Text}).Append(nil)
}

func refuse(format string, args ...any) *Error {
	return &Error{Text: fmt.Sprintf(format, args...)}
}

func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", string(c))
}

// isAtomChar: ATOM-CHAR of RFC 5804 section 4, "!" / %x23-27 / %x2A-5B /
// %x5D-7A / %x7C-7E: no SP, CTL, DQUOTE, "(", ")", "\", "{" or 8-bit.
func isAtomChar(c byte) bool {
	return c == '!' || c >= 0x23 && c <= 0x27 || c >= 0x2a && c <= 0x5b ||
		c >= 0x5d && c <= 0x7a || c >= 0x7c && c <= 0x7e
}

func isAtom(s string) bool {
	if s == "" || len(s) > MaxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

func upper(s string) string { return strings.ToUpper(s) }

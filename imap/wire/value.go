package wire

import (
	"fmt"
	"strings"
)

// Kind says how a Value was written on the wire.
type Kind int

const (
	KindAtom    Kind = iota // a bare atom, NIL included
	KindQuoted              // "a quoted string"
	KindLiteral             // {n} or {n+} followed by n bytes
	KindList                // ( ... )
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

// Value is one argument of a command.
type Value struct {
	Kind Kind
	Str  string  // the atom, or the string's contents (unescaped)
	List []Value // for KindList
	// NonSync is true for a literal sent as {n+} (RFC 7888).
	NonSync bool
}

// IsNIL reports whether v is the atom NIL (any case).
func (v Value) IsNIL() bool { return v.Kind == KindAtom && strings.EqualFold(v.Str, "NIL") }

// IsString reports whether v is a quoted string or a literal.
func (v Value) IsString() bool { return v.Kind == KindQuoted || v.Kind == KindLiteral }

// AString returns v as an IMAP astring (atom, quoted string or literal).
func (v Value) AString() (string, bool) {
	if v.Kind == KindList {
		return "", false
	}
	return v.Str, true
}

// Command is a client command as read by Reader.ReadCommand.
type Command struct {
	Tag  string
	Name string // upper case
	Args []Value
}

// Bad returns a non-fatal tagged BAD error for c.
func (c *Command) Bad(format string, args ...any) *Error {
	return &Error{Tag: c.Tag, Text: fmt.Sprintf(format, args...)}
}

// AStrings returns the arguments as astrings when there are exactly n of
// them, else a BAD error naming the problem.
func (c *Command) AStrings(n int) ([]string, error) {
	if len(c.Args) != n {
		if n == 0 {
			return nil, c.Bad("%s takes no arguments", c.Name)
		}
		return nil, c.Bad("%s takes %d arguments, got %d", c.Name, n, len(c.Args))
	}
	out := make([]string, n)
	for i, a := range c.Args {
		s, ok := a.AString()
		if !ok {
			return nil, c.Bad("%s: argument %d is a list, want a string", c.Name, i+1)
		}
		out[i] = s
	}
	return out, nil
}

// Error is a protocol error in what a client sent. The proxy answers it with
// "<Tag> BAD [<Code>] <Text>" ("*" when Tag is empty) and, when Fatal, a BYE
// and a close, because the byte stream can no longer be followed.
type Error struct {
	Tag   string // the command's tag when it could be read
	Code  string // response code without brackets ("TOOBIG", "CLIENTBUG"), or ""
	Text  string
	Fatal bool
}

func (e *Error) Error() string {
	s := "imap: bad command"
	if e.Tag != "" {
		s += " " + e.Tag
	}
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	s += ": " + e.Text
	if e.Fatal {
		s += " (fatal)"
	}
	return s
}

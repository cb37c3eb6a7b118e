package wire

import "fmt"

// Error is what a client sent wrong, with the reply to give it. When
// Fatal, the byte stream can no longer be followed (part of an over-long
// line is still unread): answer, then close the connection.
type Error struct {
	Code     int    // reply code, 500 to 599
	Enhanced string // enhanced status code (RFC 3463), such as "5.5.2"
	Text     string
	Fatal    bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("smtp: refused command: %d %s %s", e.Code, e.Enhanced, e.Text)
	if e.Fatal {
		s += " (fatal)"
	}
	return s
}

// Reply returns the reply for e, "Code Enhanced Text" CRLF.
func (e *Error) Reply() []byte {
	b, err := (&Reply{Code: e.Code, Enhanced: e.Enhanced, Lines: []string{e.Text}}).Append(nil)
	if err != nil { // a code out of range: still a valid answer
		b, _ = (&Reply{Code: 500, Enhanced: "5.5.0", Lines: []string{e.Text}}).Append(nil)
	}
	return b
}

func syntaxError(format string, args ...any) *Error {
	return &Error{Code: 500, Enhanced: "5.5.2", Text: fmt.Sprintf(format, args...)}
}

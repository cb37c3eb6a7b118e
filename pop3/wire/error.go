package wire

import "fmt"

// Error is what a client sent wrong, with the -ERR response to give it.
// When Fatal, the byte stream can no longer be followed (part of an
// over-long line is still unread): answer, then close the connection.
type Error struct {
	Code  string // extended response code (RFC 2449 section 8) without brackets, or ""
	Text  string
	Fatal bool
}

func (e *Error) Error() string {
	s := "pop3: refused command"
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	s += ": " + e.Text
	if e.Fatal {
		s += " (fatal)"
	}
	return s
}

// Reply returns the response line for e: "-ERR [CODE] Text" CRLF.
func (e *Error) Reply() []byte {
	return (&Response{Status: StatusErr, Code: e.Code, Text: e.Text}).Append(nil)
}

func refuse(format string, args ...any) *Error {
	return &Error{Text: fmt.Sprintf(format, args...)}
}

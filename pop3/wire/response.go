package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Status indicators (RFC 1939 section 3) and the SASL continuation
// (RFC 5034 section 4).
const (
	StatusOK       = "+OK"
	StatusErr      = "-ERR"
	StatusContinue = "+"
)

// Extended response codes a proxy gives or relays (RFC 2449 section 8,
// RFC 3206).
const (
	CodeAuth       = "AUTH"        // the credentials are wrong
	CodeSysTemp    = "SYS/TEMP"    // a temporary system failure
	CodeSysPerm    = "SYS/PERM"    // a permanent system failure
	CodeInUse      = "IN-USE"      // the maildrop is locked
	CodeLoginDelay = "LOGIN-DELAY" // logged in too recently
)

// DefaultMaxResponseLine is the longest first line of a response, CRLF
// included (RFC 2449 section 4, RFC 1939 section 3).
const DefaultMaxResponseLine = 512

// DefaultMaxLines bounds the lines of a multi-line response read by
// ReadMultiLine.
const DefaultMaxLines = 1000

// Response is one server response.
type Response struct {
	Status string // StatusOK, StatusErr or StatusContinue
	// Code is the extended response code without brackets: "SYS/TEMP",
	// "AUTH", "IN-USE", "LOGIN-DELAY"; "" for none.
	Code string
	Text string // for StatusContinue: the base64 challenge, "" for none
	// Lines is the body of a multi-line response, without dot-stuffing:
	// nil for a single-line response.
	Lines []string
}

// Append appends r as sent on the wire: the status line, then for a
// multi-line response each line dot-stuffed and the terminating ".".
// Text and lines pass through SafeText-like cleaning (no CR, LF or NUL)
// and a code with octets outside RFC 2449's resp-level is left out, so
// that nothing given here can add a line.
func (r *Response) Append(dst []byte) []byte {
	dst = append(dst, r.Status...)
	if r.Status == StatusContinue {
		dst = append(dst, ' ')
		dst = append(dst, clean(r.Text)...)
		return append(dst, "\r\n"...)
	}
	if validCode(r.Code) {
		dst = append(dst, " ["...)
		dst = append(dst, r.Code...)
		dst = append(dst, ']')
	}
	if t := clean(r.Text); t != "" {
		dst = append(dst, ' ')
		dst = append(dst, t...)
	}
	dst = append(dst, "\r\n"...)
	if r.Lines == nil {
		return dst
	}
	for _, l := range r.Lines {
		l = clean(l)
		if strings.HasPrefix(l, ".") {
			dst = append(dst, '.')
		}
		dst = append(dst, l...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, ".\r\n"...)
}

// clean replaces CR, LF and NUL by spaces.
func clean(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// validCode: resp-code = "[" resp-level *("/" resp-level) "]",
// resp-level = 1*rchar, rchar = %x21-2E / %x30-5C / %x5E-7F (RFC 2449
// section 3), DEL left out.
func validCode(code string) bool {
	if code == "" {
		return false
	}
	for _, level := range strings.Split(code, "/") {
		if level == "" {
			return false
		}
		for i := 0; i < len(level); i++ {
			if c := level[i]; c < 0x21 || c > 0x7e || c == ']' {
				return false
			}
		}
	}
	return true
}

// ErrResponse marks a response that breaks RFC 1939 or RFC 2449, or one
// over a limit; errors from ReadResponse and ReadMultiLine wrap it.
var ErrResponse = errors.New("pop3: bad response")

// ReadResponse reads one single-line response (or a "+" continuation)
// from a server, its line at most maxLine octets with CRLF (0:
// DefaultMaxResponseLine). A longer line is refused as soon as the limit
// is passed.
func ReadResponse(br *bufio.Reader, maxLine int) (*Response, error) {
	maxLine = orDefault(maxLine, DefaultMaxResponseLine)
	raw, err := readLine(br, fixed(maxLine-2))
	if err == errLineTooLong {
		return nil, fmt.Errorf("%w: line too long (limit %d octets)", ErrResponse, maxLine)
	}
	if err != nil {
		return nil, err
	}
	return parseResponse(trimEOL(raw))
}

func parseResponse(line []byte) (*Response, error) {
	word, rest, _ := bytes.Cut(line, []byte(" "))
	r := &Response{}
	switch {
	case bytes.EqualFold(word, []byte(StatusOK)):
		r.Status = StatusOK
	case bytes.EqualFold(word, []byte(StatusErr)):
		r.Status = StatusErr
	case string(word) == StatusContinue:
		r.Status = StatusContinue
		r.Text = string(rest)
		return r, nil
	default:
		return nil, fmt.Errorf("%w: %q is neither +OK nor -ERR", ErrResponse, truncate(line, 40))
	}
	text := string(rest)
	if strings.HasPrefix(text, "[") {
		if end := strings.IndexByte(text, ']'); end > 0 && validCode(text[1:end]) {
			r.Code = strings.ToUpper(text[1:end])
			text = strings.TrimPrefix(text[end+1:], " ")
		}
	}
	r.Text = text
	return r, nil
}

// ReadMultiLine reads a response that is multi-line when positive, such
// as the answer to CAPA: the status line, then for +OK the body up to the
// line ".", undoing dot-stuffing (RFC 1939 section 3). Each line is at
// most maxLine octets with CRLF (0: DefaultMaxResponseLine), the body at
// most maxLines lines (0: DefaultMaxLines).
func ReadMultiLine(br *bufio.Reader, maxLine, maxLines int) (*Response, error) {
	maxLine = orDefault(maxLine, DefaultMaxResponseLine)
	maxLines = orDefault(maxLines, DefaultMaxLines)
	r, err := ReadResponse(br, maxLine)
	if err != nil || r.Status != StatusOK {
		return r, err
	}
	r.Lines = []string{}
	for {
		raw, err := readLine(br, fixed(maxLine-2))
		if err == errLineTooLong {
			return nil, fmt.Errorf("%w: line too long (limit %d octets)", ErrResponse, maxLine)
		}
		if err != nil {
			return nil, readErr(err, 1)
		}
		line := trimEOL(raw)
		if string(line) == "." {
			return r, nil
		}
		if len(r.Lines) >= maxLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrResponse, maxLines)
		}
		r.Lines = append(r.Lines, string(bytes.TrimPrefix(line, []byte("."))))
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

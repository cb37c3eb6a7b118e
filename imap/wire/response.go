package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pipegate/pipegate/internal/lineio"
)

// Response is one server response: a tagged status, untagged data or status
// ("*"), or a continuation request ("+").
type Response struct {
	Tag  string // "*", "+" or the command's tag
	Type string // upper case: OK, NO, BAD, BYE, PREAUTH, or the untagged data name (CAPABILITY, ID, ...); "" for "+"
	// Code and CodeArgs are the response code of a status response:
	// "[CAPABILITY IMAP4rev1 ...]" gives Code "CAPABILITY" and CodeArgs
	// "IMAP4rev1 ...".
	Code     string
	CodeArgs string
	Text     string // the human-readable text (for "+": the base64 challenge or text)
	Raw      []byte // the response as received, literals and CRLFs included
}

// IsStatus reports whether r is a status response (OK, NO, BAD, BYE, PREAUTH).
func (r *Response) IsStatus() bool {
	switch r.Type {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// Caps returns the capabilities r carries, as a CAPABILITY response code or
// as untagged CAPABILITY data, or nil.
func (r *Response) Caps() []string {
	if r.Code == "CAPABILITY" {
		return strings.Fields(r.CodeArgs)
	}
	if r.Tag == "*" && r.Type == "CAPABILITY" {
		return strings.Fields(r.Text)
	}
	return nil
}

// ReadResponse reads one response from a server, including literals
// announced at line ends, of at most max bytes in all (0: 64 KiB).
func ReadResponse(br *bufio.Reader, max int) (*Response, error) {
	if max <= 0 {
		max = 64 << 10
	}
	var raw []byte
	var first []byte
	for {
		line, err := readResponseLine(br, max-len(raw))
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		if first == nil {
			first = lineio.TrimEOL(line)
		}
		n, _, ok := literalAtEnd(lineio.TrimEOL(line))
		if !ok {
			break
		}
		if n > int64(max-len(raw)) {
			return nil, fmt.Errorf("imap: response literal of %d bytes is too long (limit %d)", n, max)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(br, raw[start:]); err != nil {
			return nil, lineio.ReadErr(err, 1)
		}
	}
	r := &Response{Raw: raw}
	parseResponseLine(r, string(first))
	if r.Tag == "" {
		return nil, fmt.Errorf("imap: malformed response %q", truncate(first, 80))
	}
	return r, nil
}

// readResponseLine reads a line of at most max bytes, CRLF included, and
// gives up as soon as more has come without a line end.
func readResponseLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := lineio.ReadLine(br, lineio.Fixed(max-2))
	if errors.Is(err, lineio.ErrTooLong) {
		return nil, fmt.Errorf("imap: response line too long (over %d bytes)", max)
	}
	return line, err
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func parseResponseLine(r *Response, line string) {
	tag, rest, _ := strings.Cut(line, " ")
	if tag == "" {
		return
	}
	r.Tag = tag
	if tag == "+" {
		r.Text = rest
		return
	}
	typ, rest, _ := strings.Cut(rest, " ")
	r.Type = strings.ToUpper(typ)
	if !r.IsStatus() {
		r.Text = rest
		return
	}
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			code := rest[1:end]
			r.Code, r.CodeArgs, _ = strings.Cut(code, " ")
			r.Code = strings.ToUpper(r.Code)
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	r.Text = rest
}

// HasCap reports whether caps holds name (case-insensitive).
func HasCap(caps []string, name string) bool {
	for _, c := range caps {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

// SafeText makes s fit in a response text: no CR, LF or NUL, and at most
// 400 bytes, so that text from elsewhere (a backend, a routing source)
// cannot inject responses.
func SafeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 400 {
		s = s[:400]
	}
	return strings.TrimSpace(s)
}

package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultMaxReplyLine is the longest reply line, CRLF included (RFC 5321
// section 4.5.3.1.5).
const DefaultMaxReplyLine = 512

// DefaultMaxReplyLines bounds the lines of one reply read by ReadReply.
const DefaultMaxReplyLines = 100

// Reply is one SMTP reply, single- or multi-line.
type Reply struct {
	Code int // 200 to 599
	// Enhanced is the enhanced status code (RFC 3463) carried on each
	// line, such as "5.7.8"; "" for none. Its class must be the first
	// digit of Code (RFC 2034 section 4).
	Enhanced string
	// Lines are the texts of the lines, without code and enhanced code;
	// none is written as one line without text.
	Lines []string
}

// ErrReply marks a reply that breaks RFC 5321 section 4.2 or is over a
// limit; ReadReply's errors wrap it, and Append's for a bad Code or
// Enhanced.
var ErrReply = errors.New("smtp: bad reply")

// Append appends r as sent on the wire: "250-first" ... "250 last", each
// line with the enhanced code. Text is cleaned (CR, LF and NUL become
// spaces) so that nothing given here can add a line.
func (r *Reply) Append(dst []byte) ([]byte, error) {
	if r.Code < 200 || r.Code > 599 {
		return dst, fmt.Errorf("%w: code %d out of range", ErrReply, r.Code)
	}
	if r.Enhanced != "" && !validEnhanced(r.Enhanced, r.Code) {
		return dst, fmt.Errorf("%w: enhanced status code %q does not fit %d", ErrReply, r.Enhanced, r.Code)
	}
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		dst = strconv.AppendInt(dst, int64(r.Code), 10)
		if i < len(lines)-1 {
			dst = append(dst, '-')
		} else if r.Enhanced != "" || l != "" || r.Code == 334 {
			// RFC 4954 section 4: continue-req = "334" SP [base64] CRLF.
			dst = append(dst, ' ')
		}
		if r.Enhanced != "" {
			dst = append(dst, r.Enhanced...)
			if l != "" {
				dst = append(dst, ' ')
			}
		}
		dst = append(dst, clean(l)...)
		dst = append(dst, "\r\n"...)
	}
	return dst, nil
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

// validEnhanced: status-code = class "." subject "." detail, class = "2"
// / "4" / "5", subject and detail 1*3digit (RFC 3463 section 2), with the
// class of the reply code.
func validEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || int(parts[0][0]-'0') != code/100 {
		return false
	}
	switch parts[0] {
	case "2", "4", "5":
	default:
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if !isDigit(p[i]) {
				return false
			}
		}
	}
	return true
}

// ReadReply reads one reply from a server: lines "250-..." up to the
// last "250 ...", each at most maxLine octets with CRLF (0:
// DefaultMaxReplyLine) and at most maxLines of them (0:
// DefaultMaxReplyLines). Every line must carry the same code (RFC 5321
// section 4.2.1), of the form %x32-35 %x30-35 %x30-39. The enhanced code
// of the first line, when it has one whose class fits, is taken off every
// line that has it. An over-long line is refused as soon as the limit is
// passed.
func ReadReply(br *bufio.Reader, maxLine, maxLines int) (*Reply, error) {
	maxLine = orDefault(maxLine, DefaultMaxReplyLine)
	maxLines = orDefault(maxLines, DefaultMaxReplyLines)
	r := &Reply{}
	for {
		raw, err := readLine(br, fixed(maxLine-2))
		if err == errLineTooLong {
			return nil, fmt.Errorf("%w: line too long (limit %d octets)", ErrReply, maxLine)
		}
		if err != nil {
			if len(r.Lines) > 0 {
				return nil, readErr(err, 1)
			}
			return nil, err
		}
		line := trimEOL(raw)
		code, ok := replyCode(line)
		if !ok || len(line) > 3 && line[3] != '-' && line[3] != ' ' {
			return nil, fmt.Errorf("%w: malformed line %q", ErrReply, truncate(line, 40))
		}
		if len(r.Lines) == 0 {
			r.Code = code
		} else if code != r.Code {
			return nil, fmt.Errorf("%w: code %d in a reply of %d", ErrReply, code, r.Code)
		}
		if len(r.Lines) >= maxLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrReply, maxLines)
		}
		text := ""
		if len(line) > 4 {
			text = string(line[4:])
		}
		if len(r.Lines) == 0 {
			if enh, _, _ := strings.Cut(text, " "); validEnhanced(enh, code) {
				r.Enhanced = enh
			}
		}
		if r.Enhanced != "" && (text == r.Enhanced || strings.HasPrefix(text, r.Enhanced+" ")) {
			text = strings.TrimPrefix(text[len(r.Enhanced):], " ")
		}
		r.Lines = append(r.Lines, text)
		if len(line) == 3 || line[3] == ' ' {
			return r, nil
		}
	}
}

// replyCode: Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 section 4.2).
func replyCode(line []byte) (int, bool) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || !isDigit(line[2]) {
		return 0, false
	}
	return int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0'), true
}

// Text returns the reply's lines joined by spaces, for logs and errors.
func (r *Reply) Text() string { return strings.Join(r.Lines, " ") }

// Positive reports whether the code is 2xx (or 3xx: intermediate, as 334
// and 354).
func (r *Reply) Positive() bool { return r.Code < 400 }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(bytes.ToValidUTF8(b[:n], nil)) + "..."
	}
	return string(b)
}

package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/lineio"
)

// FuzzReadCommand: no panics, bounded reads, errors are *Error or I/O
// errors, and a non-fatal *Error leaves the reader where the next command
// can be read. Each input is read twice: once ending in EOF, once from a
// client that stops sending but keeps the connection open, where the
// reader may only be waiting if what it holds of the last line can still
// become a valid command.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN alice secret\r\n",
		"a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n",
		"a1 ID (\"name\" \"x\" \"v\" NIL)\r\n",
		"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"a1 LOGIN \"a\\\"b\" \"\\\\\"\r\n",
		"a1 X ((((a))) {0}\r\n)\r\n",
		"a1 LOGIN {99999}\r\n",
		"a1 LOGIN \"x {3+}\r\nabc\r\nb NOOP\r\n",
		"\r\n\n\x00",
		"a1 LOGIN " + strings.Repeat("x", 300),
		"a1 LOGIN {3+}\r\nabc " + strings.Repeat("x", 200) + "\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzReadCommand(t, in, false)
		fuzzReadCommand(t, in, true)
	})
}

func fuzzReadCommand(t *testing.T, in []byte, stall bool) {
	var src io.Reader = bytes.NewReader(in)
	if stall {
		src = io.MultiReader(src, stalled{})
	}
	r := NewReader(bufio.NewReaderSize(src, 16))
	r.MaxLine, r.MaxLiteral, r.MaxLiterals = 200, 100, 4
	r.Continue = func(int64) error { return nil }
	for range len(in) + 2 {
		cmd, err := r.ReadCommand()
		if err == nil {
			if cmd.Tag == "" || cmd.Name == "" {
				t.Fatalf("command without tag or name: %+v", cmd)
			}
			checkValues(t, cmd.Args, 0)
			continue
		}
		var we *Error
		if errors.As(err, &we) {
			if we.Text == "" {
				t.Fatal("error without text")
			}
			if we.Fatal {
				return
			}
			continue
		}
		if stall && errors.Is(err, errStalled) {
			// Waiting is right only for a line that may still end
			// in time: after the last LF, at most one literal's
			// bytes and the line's text (CR not counted).
			tail := in[bytes.LastIndexByte(in, '\n')+1:]
			if n := len(bytes.TrimSuffix(tail, []byte("\r"))); n > 200+100 {
				t.Fatalf("waiting for more after %d bytes without a line end", n)
			}
			return
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		return
	}
	t.Fatalf("more commands than input bytes")
}

// errStalled stands for a client that sends nothing more: a real
// connection would block.
var errStalled = errors.New("client stalled")

type stalled struct{}

func (stalled) Read([]byte) (int, error) { return 0, errStalled }

// FuzzReadLine: a line comes back whole and within the limit, an
// over-long one is a fatal TOOBIG as soon as the limit is passed, and
// nothing past the line is consumed.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"abc\r\n", strings.Repeat("x", 20) + "\r\n", strings.Repeat("x", 21) + "\n", strings.Repeat("y", 21), "a\x00\r\n", "\r\r\n"} {
		f.Add([]byte(s))
	}
	const limit = 20
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(in), stalled{}), 16)
		r := NewReader(br)
		r.MaxLine = limit
		line, err := r.ReadLine()
		end := bytes.IndexByte(in, '\n')
		var want []byte // the line as sent, CRLF trimmed
		tooBig := len(bytes.TrimSuffix(in, []byte("\r"))) > limit
		if end >= 0 {
			want = lineio.TrimEOL(in[:end+1])
			tooBig = len(want) > limit
		}
		var we *Error
		switch {
		case err == nil:
			if tooBig || end < 0 || !bytes.Equal(line, want) || bytes.IndexByte(line, 0) >= 0 {
				t.Fatalf("got line %q from %q", line, in)
			}
			// The rest is left for the next read.
			rest, _ := io.ReadAll(io.LimitReader(br, int64(len(in))))
			if !bytes.Equal(rest, in[end+1:]) {
				t.Fatalf("left %q after the line, want %q", rest, in[end+1:])
			}
		case errors.As(err, &we):
			if !we.Fatal || (we.Code == "TOOBIG") != tooBig {
				t.Fatalf("%v for %q", err, in)
			}
			if !tooBig && bytes.IndexByte(want, 0) < 0 {
				t.Fatalf("%v for %q, which has no NUL", err, in)
			}
		case errors.Is(err, errStalled):
			if end >= 0 || tooBig {
				t.Fatalf("waiting for more after %q", in)
			}
		default:
			t.Fatalf("unexpected error %T: %v", err, err)
		}
	})
}

func checkValues(t *testing.T, vs []Value, depth int) {
	if depth > maxDepth {
		t.Fatal("nesting over the limit")
	}
	for _, v := range vs {
		switch v.Kind {
		case KindList:
			checkValues(t, v.List, depth+1)
		case KindLiteral:
			if len(v.Str) > 100 {
				t.Fatal("literal over the limit")
			}
		case KindAtom:
			if v.Str == "" {
				t.Fatal("empty atom")
			}
		}
	}
}

// FuzzReadResponse: no panics, Raw is exactly what was consumed.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n",
		"a1 NO [AUTHENTICATIONFAILED] no\r\n",
		"+ \r\n",
		"* ID (\"a\" {3}\r\nabc)\r\n",
		"* OK [\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		var raw []byte
		for range len(in) + 1 {
			resp, err := ReadResponse(br, 300)
			if err != nil {
				return
			}
			if resp.Tag == "" {
				t.Fatal("response without tag")
			}
			raw = append(raw, resp.Raw...)
			if !bytes.HasPrefix(in, raw) {
				t.Fatal("Raw is not the input consumed")
			}
		}
	})
}

// FuzzWriterRoundTrip: any string written by Writer reads back the same;
// one with NUL, which no IMAP string holds, is refused.
func FuzzWriterRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", "\"\\", "\r\n", "\x00", "\xff{3}"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, plus bool) {
		var buf bytes.Buffer
		w := &Writer{W: bufio.NewWriter(&buf), LiteralPlus: plus, Continue: func() error { return nil }}
		w.Atom("a").SP().Atom("X").SP().String(s).CRLF()
		err := w.Flush()
		if strings.IndexByte(s, 0) >= 0 {
			if err == nil {
				t.Fatalf("%q: written", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(bufio.NewReader(&buf))
		r.MaxLiteral = int64(len(s)) + 1
		r.Continue = func(int64) error { return nil }
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if len(cmd.Args) != 1 || cmd.Args[0].Str != s {
			t.Fatalf("%q: got %+v", s, cmd.Args)
		}
	})
}

package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadCommand: no panics, bounded reads, errors are *Error or I/O
// errors, and a non-fatal *Error leaves the reader where the next command
// can be read.
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := &countingReader{r: bytes.NewReader(in)}
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
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		t.Fatalf("more commands than input bytes")
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

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
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

// FuzzWriterRoundTrip: any string written by Writer reads back the same.
func FuzzWriterRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", "\"\\", "\r\n", "\x00", "\xff{3}"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, plus bool) {
		var buf bytes.Buffer
		w := &Writer{W: bufio.NewWriter(&buf), LiteralPlus: plus, Continue: func() error { return nil }}
		w.Atom("a").SP().Atom("X").SP().String(s).CRLF()
		if err := w.Flush(); err != nil {
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

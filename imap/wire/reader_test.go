package wire

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// readAll reads commands from input until EOF, answering synchronizing
// literals into conts, and returns what each ReadCommand gave.
type step struct {
	cmd *Command
	err *Error
}

func readAll(t *testing.T, input string, setup func(*Reader)) (steps []step, conts int, last error) {
	t.Helper()
	r := NewReader(bufio.NewReaderSize(strings.NewReader(input), 64))
	r.MaxLine, r.MaxLiteral = 100, 50
	r.Continue = func(int64) error { conts++; return nil }
	if setup != nil {
		setup(r)
	}
	for range 100 {
		cmd, err := r.ReadCommand()
		if err != nil {
			var we *Error
			if errors.As(err, &we) {
				steps = append(steps, step{err: we})
				if we.Fatal {
					return steps, conts, err
				}
				continue
			}
			return steps, conts, err
		}
		steps = append(steps, step{cmd: cmd})
	}
	t.Fatal("too many commands")
	return
}

func atom(s string) Value   { return Value{Kind: KindAtom, Str: s} }
func quoted(s string) Value { return Value{Kind: KindQuoted, Str: s} }
func lit(s string) Value    { return Value{Kind: KindLiteral, Str: s} }
func litNS(s string) Value  { return Value{Kind: KindLiteral, Str: s, NonSync: true} }
func list(v ...Value) Value {
	if v == nil {
		v = []Value{}
	}
	return Value{Kind: KindList, List: v}
}

func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  []Value // args of the single command
		cmd   string
		conts int
	}{
		{"no args", "a1 capability\r\n", nil, "CAPABILITY", 0},
		{"bare LF", "a1 NOOP\n", nil, "NOOP", 0},
		{"atoms", "a1 LOGIN alice secret\r\n", []Value{atom("alice"), atom("secret")}, "LOGIN", 0},
		{"quoted with escapes", `a1 LOGIN "al ice" "p\"a\\ss"` + "\r\n", []Value{quoted("al ice"), quoted(`p"a\ss`)}, "LOGIN", 0},
		{"empty quoted", `a1 LOGIN "" ""` + "\r\n", []Value{quoted(""), quoted("")}, "LOGIN", 0},
		{"utf8 quoted", "a1 LOGIN \"j\u00f6rg\" x\r\n", []Value{quoted("j\u00f6rg"), atom("x")}, "LOGIN", 0},
		{"sync literals", "a1 LOGIN {5}\r\nalice {6}\r\nse\r\nt!\r\n", []Value{lit("alice"), lit("se\r\nt!")}, "LOGIN", 2},
		{"non-sync literals", "a1 LOGIN {5+}\r\nalice {2+}\r\n\"}\r\n", []Value{litNS("alice"), litNS("\"}")}, "LOGIN", 0},
		{"empty literal", "a1 LOGIN {0}\r\n {0+}\r\n\r\n", []Value{lit(""), litNS("")}, "LOGIN", 1},
		{"NIL and list", `a1 ID ("name" "x" "version" NIL)` + "\r\n",
			[]Value{list(quoted("name"), quoted("x"), quoted("version"), atom("NIL"))}, "ID", 0},
		{"empty list", "a1 ID ()\r\n", []Value{list()}, "ID", 0},
		{"nested list with literal", "a1 X (a (b {1}\r\nc) d)\r\n", []Value{list(atom("a"), list(atom("b"), lit("c")), atom("d"))}, "X", 1},
		{"SASL-IR", "a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n", []Value{atom("PLAIN"), atom("AGFsaWNlAHNlY3JldA==")}, "AUTHENTICATE", 0},
		{"trailing space", "a1 NOOP \r\n", nil, "NOOP", 0},
		{"double space", "a1 LOGIN  a  b\r\n", []Value{atom("a"), atom("b")}, "LOGIN", 0},
		{"tag with ]", "a]1 NOOP\r\n", nil, "NOOP", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, conts, err := readAll(t, tc.in, nil)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end: %v, want EOF", err)
			}
			if len(steps) != 1 || steps[0].cmd == nil {
				t.Fatalf("steps %+v, want one command", steps)
			}
			c := steps[0].cmd
			if c.Tag != strings.Fields(tc.in)[0] || c.Name != tc.cmd {
				t.Errorf("tag %q name %q", c.Tag, c.Name)
			}
			if !reflect.DeepEqual(c.Args, tc.want) {
				t.Errorf("args\n got %#v\nwant %#v", c.Args, tc.want)
			}
			if conts != tc.conts {
				t.Errorf("%d continuation requests, want %d", conts, tc.conts)
			}
		})
	}
}

// TestReadCommandErrors: each bad command gives a BAD with the right tag
// and, when not fatal, the next command ("z NOOP") is read correctly.
func TestReadCommandErrors(t *testing.T) {
	long := strings.Repeat("x", 150)
	for _, tc := range []struct {
		name    string
		in      string
		tag     string
		code    string
		text    string // substring
		fatal   bool
		noConts bool
	}{
		{"empty line", "\r\n", "", "", "Empty command", false, false},
		{"no command", "a1\r\n", "a1", "", "Missing command", false, false},
		{"bad tag", "a+1 NOOP\r\n", "", "", "in tag", false, false},
		{"unterminated quote", "a1 LOGIN \"x\r\n", "a1", "", "Unterminated quoted", false, false},
		{"bad escape", `a1 LOGIN "a\b" c` + "\r\n", "a1", "", "Invalid escape", false, false},
		{"NUL", "a1 LOGIN a\x00 b\r\n", "a1", "", "NUL", false, false},
		{"ctl in atom", "a1 LOGIN a\x01 b\r\n", "a1", "", "Invalid character byte 0x01", false, false},
		{"CR in quoted", "a1 LOGIN \"a\rb\" c\r\n", "a1", "", "Invalid byte 0x0d in quoted string", false, false},
		{"quote in atom", "a1 LOGIN a\"b c\r\n", "a1", "", "Invalid character", false, false},
		{"unbalanced )", "a1 ID )\r\n", "a1", "", "Unexpected ')'", false, false},
		{"missing )", "a1 ID (a b\r\n", "a1", "", "Missing ')'", false, false},
		{"too deep", "a1 X " + strings.Repeat("(", 20) + "\r\n", "a1", "", "nested", false, false},
		{"literal not at end", "a1 LOGIN {3}x y\r\n", "a1", "", "must end the line", false, false},
		{"bad literal size", "a1 LOGIN {x}\r\n", "a1", "", "Invalid literal size", false, false},
		{"sync literal too big", "a1 LOGIN {51}\r\n", "a1", "TOOBIG", "over the limit", false, true},
		{"non-sync literal too big", "a1 LOGIN {51+}\r\n" + strings.Repeat("x", 51) + "\r\n", "a1", "TOOBIG", "over the limit", true, true},
		{"line too long", "a1 LOGIN " + long + "\r\n", "a1", "TOOBIG", "too long", true, false},
		{"line too long over buffers", "a1 LOGIN " + strings.Repeat(long, 5) + "\r\n", "a1", "TOOBIG", "too long", true, false},
		{"too long after a literal", "a1 LOGIN {2}\r\nab " + long + "\r\n", "a1", "TOOBIG", "too long", true, false},
		{"error before non-sync literal is skipped", "a1 LOGIN \"x {3+}\r\nabc\r\n", "a1", "", "Unterminated", false, false},
		{"too long line ending in non-sync literal", "a1 LOGIN " + long + " {3+}\r\nabc\r\n", "a1", "TOOBIG", "too long", true, false},
		{"error after literal skips chained non-sync literals", "a1 X {1+}\r\na \"b {2+}\r\nxy {1+}\r\nz\r\n", "a1", "", "Unterminated", false, false},
		{"endless line", "a1 " + strings.Repeat("y", 70000), "a1", "TOOBIG", "too long", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if !tc.fatal {
				in += "z NOOP\r\n"
			}
			steps, conts, err := readAll(t, in, nil)
			if len(steps) == 0 || steps[0].err == nil {
				t.Fatalf("steps %+v, want an error first", steps)
			}
			e := steps[0].err
			if e.Tag != tc.tag || e.Code != tc.code || !strings.Contains(e.Text, tc.text) || e.Fatal != tc.fatal {
				t.Errorf("got %+v, want tag %q code %q text ~%q fatal %v", e, tc.tag, tc.code, tc.text, tc.fatal)
			}
			if tc.noConts && conts != 0 {
				t.Errorf("%d continuation requests for a refused literal", conts)
			}
			if tc.fatal {
				return
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("end: %v, want EOF", err)
			}
			if len(steps) != 2 || steps[1].cmd == nil || steps[1].cmd.Tag != "z" || steps[1].cmd.Name != "NOOP" {
				t.Fatalf("after the error: %+v, want z NOOP", steps[1:])
			}
		})
	}
}

func TestLiteralMinus(t *testing.T) {
	in := "a1 LOGIN {4097+}\r\n"
	_, _, err := readAll(t, in, func(r *Reader) { r.MaxLiteral = 10000; r.LiteralMinus = true })
	var we *Error
	if !errors.As(err, &we) || !we.Fatal || we.Code != "TOOBIG" {
		t.Fatalf("got %v, want fatal TOOBIG", err)
	}
	in = "a1 LOGIN {4096+}\r\n" + strings.Repeat("x", 4096) + " y\r\n"
	steps, _, err := readAll(t, in, func(r *Reader) { r.MaxLiteral = 10000; r.MaxLine = 100; r.LiteralMinus = true })
	if !errors.Is(err, io.EOF) || len(steps) != 1 || steps[0].cmd == nil || len(steps[0].cmd.Args[0].Str) != 4096 {
		t.Fatalf("4096-byte non-sync literal: %+v %v", steps, err)
	}
}

func TestSyncLiteralWithoutContinue(t *testing.T) {
	steps, _, err := readAll(t, "a1 LOGIN {3}\r\nz NOOP\r\n", func(r *Reader) { r.Continue = nil })
	if !errors.Is(err, io.EOF) || len(steps) != 2 || steps[0].err == nil || steps[1].cmd == nil {
		t.Fatalf("got %+v %v", steps, err)
	}
}

func TestTooManyLiterals(t *testing.T) {
	in := "a1 X" + strings.Repeat(" {1+}\r\nx", 3) + "\r\nz NOOP\r\n"
	steps, _, err := readAll(t, in, func(r *Reader) { r.MaxLiterals = 2 })
	if !errors.Is(err, io.EOF) || len(steps) != 2 || steps[0].err == nil || !strings.Contains(steps[0].err.Text, "Too many literals") {
		t.Fatalf("got %+v %v", steps, err)
	}
}

func TestReadLine(t *testing.T) {
	r := NewReader(bufio.NewReader(strings.NewReader("abc\r\n" + strings.Repeat("x", 200) + "\r\n")))
	r.MaxLine = 100
	l, err := r.ReadLine()
	if err != nil || string(l) != "abc" {
		t.Fatalf("got %q %v", l, err)
	}
	_, err = r.ReadLine()
	var we *Error
	if !errors.As(err, &we) || !we.Fatal {
		t.Fatalf("long line: %v, want fatal", err)
	}
}

func TestUnexpectedEOF(t *testing.T) {
	for _, in := range []string{"a1 NOOP", "a1 LOGIN {5}\r\nab", "a1 LOGIN {2}\r\nab"} {
		_, _, err := readAll(t, in, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v, want unexpected EOF", in, err)
		}
	}
}

func TestContinueError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := readAll(t, "a1 LOGIN {3}\r\nabc x\r\n", func(r *Reader) { r.Continue = func(int64) error { return boom } })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestAStrings(t *testing.T) {
	c := &Command{Tag: "a", Name: "LOGIN", Args: []Value{atom("x"), list()}}
	if _, err := c.AStrings(2); err == nil || !strings.Contains(err.Error(), "list") {
		t.Errorf("list argument: %v", err)
	}
	if _, err := c.AStrings(1); err == nil || !strings.Contains(err.Error(), "takes 1 arguments, got 2") {
		t.Errorf("count: %v", err)
	}
	c.Args = []Value{quoted("u"), lit("p")}
	got, err := c.AStrings(2)
	if err != nil || got[0] != "u" || got[1] != "p" {
		t.Errorf("got %q %v", got, err)
	}
}

func BenchmarkReadCommand(b *testing.B) {
	in := strings.Repeat("a1 LOGIN \"alice@a.test\" {6+}\r\nsecret\r\n", 1000)
	b.SetBytes(int64(len(in) / 1000))
	r := strings.NewReader(in)
	br := bufio.NewReader(r)
	rd := NewReader(br)
	for b.Loop() {
		if _, err := rd.ReadCommand(); err != nil {
			r.Reset(in)
			br.Reset(r)
			continue
		}
	}
}

func TestLineLimitExact(t *testing.T) {
	ok := "a1 X " + strings.Repeat("y", 95) // 100 bytes
	for _, eol := range []string{"\r\n", "\n"} {
		steps, _, err := readAll(t, ok+eol+ok+"y"+eol, nil)
		if len(steps) != 2 || steps[0].cmd == nil || steps[1].err == nil || steps[1].err.Code != "TOOBIG" || !steps[1].err.Fatal {
			t.Errorf("eol %q: %+v %v, want a command then a fatal TOOBIG", eol, steps, err)
		}
	}
}

// TestHugeLiteralSize: a literal size of more digits than 63 bits hold is
// still a number64 of RFC 9051, over any limit: a non-synchronizing one
// is a fatal TOOBIG, also after a syntax error earlier on its line, so
// that its bytes, already on their way, are never read as commands. A
// synchronizing one is refused (TOOBIG) and the client, which waits for
// "+", goes on.
func TestHugeLiteralSize(t *testing.T) {
	const huge = "1000000000000000000" // 19 digits
	for _, in := range []string{
		"a LOGIN {" + huge + "+}\r\nb LOGIN smuggled pw\r\n",
		"a LOGIN {99999999999999999999999+}\r\nb LOGIN smuggled pw\r\n",
		"a LOGIN \"x {" + huge + "+}\r\nb LOGIN smuggled pw\r\n", // a bad quoted string: skipRest
	} {
		steps, _, err := readAll(t, in, nil)
		var we *Error
		if !errors.As(err, &we) || !we.Fatal || we.Code != "TOOBIG" || we.Tag != "a" || len(steps) != 1 {
			t.Errorf("%q: %+v, %v; want only a fatal TOOBIG tagged a", in, steps, err)
		}
	}
	steps, conts, err := readAll(t, "a LOGIN {"+huge+"}\r\nb NOOP\r\n", nil)
	if !errors.Is(err, io.EOF) || conts != 0 || len(steps) != 2 || steps[0].err == nil || steps[0].err.Code != "TOOBIG" ||
		steps[0].err.Fatal || steps[1].cmd == nil || steps[1].cmd.Name != "NOOP" {
		t.Errorf("synchronizing: %+v, %d continuations, %v", steps, conts, err)
	}
}

// TestCommandNameASCII: command names are atoms, upper-cased by ASCII
// rules only: a dotless i or a long s leaves the name unknown.
func TestCommandNameASCII(t *testing.T) {
	steps, _, err := readAll(t, "a log\u0131n x y\r\nb \u017ftarttls\r\nc login x y\r\n", nil)
	if !errors.Is(err, io.EOF) || len(steps) != 3 {
		t.Fatalf("%+v %v", steps, err)
	}
	for i, want := range []string{"LOG\u0131N", "\u017fTARTTLS", "LOGIN"} {
		if c := steps[i].cmd; c == nil || c.Name != want {
			t.Errorf("command %d: %+v, want name %q", i, steps[i], want)
		}
	}
}

package wire

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func newTestReader(in string) *Reader {
	r := NewReader(bufio.NewReaderSize(strings.NewReader(in), 16))
	r.MaxLine, r.MaxLiteral = 2000, 50
	return r
}

func atom(s string) Value   { return Value{Kind: KindAtom, Str: s} }
func quoted(s string) Value { return Value{Kind: KindQuoted, Str: s} }
func lit(s string) Value    { return Value{Kind: KindLiteral, Str: s} }
func litNS(s string) Value  { return Value{Kind: KindLiteral, Str: s, NonSync: true} }

func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		cmd      string
		args     []Value
	}{
		{"no args", "capability\r\n", "CAPABILITY", nil},
		{"bare LF", "NOOP\n", "NOOP", nil},
		{"authenticate", `Authenticate "PLAIN" "AGFsaWNlAHNlY3JldA=="` + "\r\n", "AUTHENTICATE", []Value{quoted("PLAIN"), quoted("AGFsaWNlAHNlY3JldA==")}},
		{"non-sync literal", "AUTHENTICATE \"PLAIN\" {20+}\r\nAGFsaWNlAHNlY3JldA==\r\n", "AUTHENTICATE", []Value{quoted("PLAIN"), litNS("AGFsaWNlAHNlY3JldA==")}},
		{"sync literal read the same", "AUTHENTICATE {5}\r\nPLAIN\r\n", "AUTHENTICATE", []Value{lit("PLAIN")}},
		{"literal with CRLF and more args", "PUTSCRIPT {2+}\r\n\r\n {0+}\r\n\r\n", "PUTSCRIPT", []Value{litNS("\r\n"), litNS("")}},
		{"escapes", `NOOP "a\"b\\c"` + "\r\n", "NOOP", []Value{quoted(`a"b\c`)}},
		{"utf8", "NOOP \"j\u00f6rg\"\r\n", "NOOP", []Value{quoted("j\u00f6rg")}},
		{"atom args", "HAVESPACE \"x\" 1000\r\n", "HAVESPACE", []Value{quoted("x"), atom("1000")}},
		{"quoted at 1024", "NOOP \"" + strings.Repeat("q", 1024) + "\"\r\n", "NOOP", []Value{quoted(strings.Repeat("q", 1024))}},
		{"trailing space", "LOGOUT \r\n", "LOGOUT", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReader(tc.in)
			cmd, err := r.ReadCommand()
			if err != nil {
				t.Fatal(err)
			}
			if cmd.Name != tc.cmd || !reflect.DeepEqual(cmd.Args, tc.args) {
				t.Errorf("got %s %#v, want %s %#v", cmd.Name, cmd.Args, tc.cmd, tc.args)
			}
			if _, err := r.ReadCommand(); err != io.EOF {
				t.Errorf("then %v, want EOF", err)
			}
		})
	}
}

// TestReadCommandErrors: each bad command gives its response and, unless
// fatal, the next command ("NOOP") is read.
func TestReadCommandErrors(t *testing.T) {
	long := strings.Repeat("x", 2001)
	for _, tc := range []struct {
		name, in, reply string
		fatal           bool
	}{
		{"empty", "\r\n", "NO \"Empty command\"\r\n", false},
		{"no name", "\"x\"\r\n", "NO \"Missing command name\"\r\n", false},
		{"unterminated", "NOOP \"x\r\n", "NO \"Unterminated quoted string\"\r\n", false},
		{"bad escape", `NOOP "a\b"` + "\r\n", "NO \"Invalid escape in quoted string (only \\\\\\\" and \\\\\\\\)\"\r\n", false},
		{"NUL in quoted", "NOOP \"a\x00\"\r\n", "NO \"Invalid byte 0x00 in quoted string\"\r\n", false},
		{"CR in quoted", "NOOP \"a\rb\"\r\n", "NO \"Invalid byte 0x0d in quoted string\"\r\n", false},
		{"bad UTF-8", "NOOP \"\xff\"\r\n", "NO \"Invalid UTF-8 in quoted string\"\r\n", false},
		{"quoted over 1024", "NOOP \"" + strings.Repeat("q", 1025) + "\"\r\n", "NO \"Quoted string longer than 1024 octets\"\r\n", false},
		{"list in command", "NOOP (a)\r\n", "NO \"Invalid character \\\"(\\\"\"\r\n", false},
		{"8-bit atom", "NOOP \xc3\xa4\r\n", "NO \"Invalid character byte 0xc3\"\r\n", false},
		{"no space", "NOOP \"a\"\"b\"\r\n", "NO \"Expected space, got \\\"\\\\\\\"\\\"\"\r\n", false},
		{"literal not at end", "NOOP {3+}x\r\n", "NO \"Literal size must end the line\"\r\n", false},
		{"bad literal size", "NOOP {x+}\r\n", "NO \"Invalid literal size\"\r\n", false},
		// A size of more than 32 bits is still digits, and its octets are
		// on their way: never read as commands.
		{"literal over 32 bits", "NOOP {4294967296+}\r\nNOOP \"smuggled\"\r\n", "BYE \"Literal of 4294967296 octets is over the limit of 50\"\r\n", true},
		{"error before a literal over 32 bits", "NOOP \"x {99999999999999999999+}\r\nNOOP \"smuggled\"\r\n", "BYE \"Literal too big to skip\"\r\n", true},
		{"error before a literal skips it", "NOOP \"x {3+}\r\nabc\r\n", "NO \"Unterminated quoted string\"\r\n", false},
		{"error after a literal skips chained ones", "NOOP {1+}\r\na \"b {2}\r\nxy {1+}\r\nz\r\n", "NO \"Unterminated quoted string\"\r\n", false},
		{"literal over the limit", "NOOP {51+}\r\n" + strings.Repeat("x", 51) + "\r\n", "BYE \"Literal of 51 octets is over the limit of 50\"\r\n", true},
		{"line too long", "NOOP " + long + "\r\n", "BYE \"Command line too long (limit 2000 octets)\"\r\n", true},
		{"too long after a literal", "NOOP {2+}\r\nab " + long + "\r\n", "BYE \"Command line too long (limit 2000 octets)\"\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReader(tc.in + "NOOP\r\n")
			_, err := r.ReadCommand()
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("got %v, want *Error", err)
			}
			if string(we.Reply()) != tc.reply || we.Fatal != tc.fatal {
				t.Errorf("got %q fatal %v, want %q fatal %v", we.Reply(), we.Fatal, tc.reply, tc.fatal)
			}
			if tc.fatal {
				return
			}
			if cmd, err := r.ReadCommand(); err != nil || cmd.Name != "NOOP" || len(cmd.Args) != 0 {
				t.Errorf("after the error: %+v %v, want NOOP", cmd, err)
			}
		})
	}
}

func TestReadString(t *testing.T) {
	r := newTestReader("\"AGFsaWNlAHNlY3JldA==\"\r\n{4+}\r\nYWJj\r\n\"*\"\r\nabc\r\n\"a\" \"b\"\r\nNOOP\r\n")
	for _, want := range []string{"AGFsaWNlAHNlY3JldA==", "YWJj", "*"} {
		v, err := r.ReadString()
		if err != nil || v.Str != want {
			t.Fatalf("got %+v %v, want %q", v, err, want)
		}
	}
	for range 2 {
		var we *Error
		if _, err := r.ReadString(); !errors.As(err, &we) || we.Fatal {
			t.Fatalf("got %v, want a non-fatal *Error", err)
		}
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Name != "NOOP" {
		t.Fatalf("then %+v %v", cmd, err)
	}
}

func TestCommandStrings(t *testing.T) {
	cmd := &Command{Name: "AUTHENTICATE", Args: []Value{quoted("PLAIN"), litNS("x")}}
	if s, err := cmd.Strings(1, 2); err != nil || !reflect.DeepEqual(s, []string{"PLAIN", "x"}) {
		t.Errorf("got %q %v", s, err)
	}
	if _, err := (&Command{Name: "X", Args: []Value{atom("PLAIN")}}).Strings(1, 2); err == nil {
		t.Error("atom taken as a string")
	}
	if _, err := cmd.Strings(0, 0); err == nil {
		t.Error("two arguments taken for none")
	}
}

// TestSASLQuotedLength: SASL data (AUTHENTICATE's arguments, the answers
// to its challenges) may be a quoted string longer than MaxQuoted, as an
// OAuth token is, within the line's limit; other commands keep
// MaxQuoted.
func TestSASLQuotedLength(t *testing.T) {
	token := strings.Repeat("T", 1500) // over MaxQuoted, under the test reader's 2000-octet line
	r := newTestReader("AUTHENTICATE \"XOAUTH2\" \"" + token + "\"\r\n\"" + token + "\"\r\nNOOP \"" + token + "\"\r\nNOOP\r\n")
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Name != "AUTHENTICATE" || len(cmd.Args) != 2 || cmd.Args[1].Str != token {
		t.Fatalf("AUTHENTICATE with a %d-octet quoted initial response: %+v %v", len(token), cmd, err)
	}
	if v, err := r.ReadString(); err != nil || v.Str != token {
		t.Fatalf("a %d-octet quoted answer: %+v %v", len(token), v, err)
	}
	var we *Error
	if _, err := r.ReadCommand(); !errors.As(err, &we) || string(we.Reply()) != "NO \"Quoted string longer than 1024 octets\"\r\n" {
		t.Fatalf("NOOP with the same string: %v, want the MaxQuoted refusal", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Name != "NOOP" {
		t.Fatalf("then %+v %v", cmd, err)
	}
	long := strings.Repeat("T", 2001)
	r = newTestReader("AUTHENTICATE \"XOAUTH2\" \"" + long + "\"\r\n")
	if _, err := r.ReadCommand(); !errors.As(err, &we) || !we.Fatal {
		t.Fatalf("AUTHENTICATE past the line's limit: %v, want a fatal *Error", err)
	}
}

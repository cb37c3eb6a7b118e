package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	in := "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN] Dovecot ready.\r\n" +
		"+ \r\n" +
		"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n" +
		"* ID (\"name\" {7}\r\nDovecot)\r\n" +
		"* CAPABILITY IMAP4rev1 IDLE\r\n" +
		"pg1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" +
		"pg2 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n" +
		"pg3 ok done\r\n" +
		"* BYE\r\n"
	want := []Response{
		{Tag: "*", Type: "OK", Code: "CAPABILITY", CodeArgs: "IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN", Text: "Dovecot ready."},
		{Tag: "+", Text: ""},
		{Tag: "+", Text: "eyJzdGF0dXMiOiI0MDEifQ=="},
		{Tag: "*", Type: "ID", Text: "(\"name\" {7}"},
		{Tag: "*", Type: "CAPABILITY", Text: "IMAP4rev1 IDLE"},
		{Tag: "pg1", Type: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."},
		{Tag: "pg2", Type: "OK", Code: "CAPABILITY", CodeArgs: "IMAP4rev1 IDLE MOVE", Text: "Logged in"},
		{Tag: "pg3", Type: "OK", Text: "done"},
		{Tag: "*", Type: "BYE"},
	}
	br := bufio.NewReader(strings.NewReader(in))
	var raw []byte
	for i, w := range want {
		got, err := ReadResponse(br, 0)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		raw = append(raw, got.Raw...)
		got.Raw = nil
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("response %d:\n got %+v\nwant %+v", i, *got, w)
		}
	}
	if string(raw) != in {
		t.Errorf("raw bytes differ from input")
	}
	if _, err := ReadResponse(br, 0); !errors.Is(err, io.EOF) {
		t.Errorf("at end: %v", err)
	}
}

func TestResponseCaps(t *testing.T) {
	r := &Response{Tag: "a", Type: "OK", Code: "CAPABILITY", CodeArgs: "IMAP4rev1  LITERAL+"}
	if got := r.Caps(); !reflect.DeepEqual(got, []string{"IMAP4rev1", "LITERAL+"}) {
		t.Errorf("got %q", got)
	}
	if !HasCap(r.Caps(), "literal+") || HasCap(r.Caps(), "LITERAL-") {
		t.Error("HasCap")
	}
	if (&Response{Tag: "a", Type: "OK"}).Caps() != nil {
		t.Error("caps without code")
	}
}

func TestReadResponseLimits(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("x", 200) + "\r\n",
		"* ID {500}\r\n" + strings.Repeat("x", 500) + "\r\n",
		"\r\n",
		"* OK partial",
	} {
		if _, err := ReadResponse(bufio.NewReaderSize(strings.NewReader(in), 16), 100); err == nil {
			t.Errorf("%.20q: no error", in)
		}
	}
}

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name            string
		plus, minus     bool
		s               string
		want            string
		conts           int
		serverContinues bool
	}{
		{"quoted", false, false, `p"a\ss`, `"p\"a\\ss"`, 0, true},
		{"empty", false, false, "", `""`, 0, true},
		{"8-bit sync", false, false, "j\u00f6rg", "{5}\r\nj\u00f6rg", 1, true},
		{"CRLF LITERAL+", true, false, "a\r\nb", "{4+}\r\na\r\nb", 0, true},
		{"LITERAL- small", false, true, "a\nb", "{3+}\r\na\nb", 0, true},
		{"LITERAL- big", false, true, strings.Repeat("\x80", 5000), "{5000}\r\n" + strings.Repeat("\x80", 5000), 1, true},
		{"long quotable becomes literal", true, false, strings.Repeat("a", 2000), "{2000+}\r\n" + strings.Repeat("a", 2000), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			conts := 0
			w := &Writer{W: bufio.NewWriter(&buf), LiteralPlus: tc.plus, LiteralMinus: tc.minus,
				Continue: func() error { conts++; return nil }}
			w.String(tc.s)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want || conts != tc.conts {
				t.Errorf("got %q (%d continues), want %q (%d)", buf.String(), conts, tc.want, tc.conts)
			}
		})
	}
}

func TestWriterContinueRefused(t *testing.T) {
	var buf bytes.Buffer
	no := errors.New("no")
	w := &Writer{W: bufio.NewWriter(&buf), Continue: func() error { return no }}
	w.Atom("a").SP().String("\x01\x80").SP().String("never")
	if err := w.Flush(); !errors.Is(err, no) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(buf.String(), "never") || strings.Contains(buf.String(), "\x80") {
		t.Errorf("wrote past a refused literal: %q", buf.String())
	}
}

func TestWriterRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "t\u00e4st", "a\r\nb", "sp ace", "(paren)", "{5}"} {
		var buf bytes.Buffer
		w := &Writer{W: bufio.NewWriter(&buf), LiteralPlus: true}
		w.Atom("a1").SP().Atom("LOGIN").SP().String(s).SP().String(s).CRLF()
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := NewReader(bufio.NewReader(&buf))
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got, err := cmd.AStrings(2)
		if err != nil || got[0] != s || got[1] != s {
			t.Errorf("%q: got %q %v", s, got, err)
		}
	}
}

func TestSafeText(t *testing.T) {
	if got := SafeText(" a\r\n* OK x\x00 "); got != "a  * OK x" {
		t.Errorf("got %q", got)
	}
	if got := SafeText(strings.Repeat("x", 500)); len(got) != 400 {
		t.Errorf("len %d", len(got))
	}
}

func TestIsAtom(t *testing.T) {
	for s, want := range map[string]bool{
		"IMAP4rev1": true, "AUTH=PLAIN": true, "LITERAL+": true, "X-GM-EXT-1": true,
		"": false, "X]Y": false, "X Y": false, "X\x01": false, "X\x7f": false,
		"(X": false, "X{1}": false, "\"X\"": false, "X\\": false, "X%": false, "X*": false, "X\u00e9": false,
	} {
		if got := IsAtom(s); got != want {
			t.Errorf("IsAtom(%q) = %v, want %v", s, got, want)
		}
	}
}

package wire

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func newTestReader(in string) *Reader {
	return NewReader(bufio.NewReaderSize(strings.NewReader(in), 16))
}

func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		name, in     string
		verb, params string
	}{
		{"ehlo", "ehlo client.example.org\r\n", "EHLO", "client.example.org"},
		{"no params", "STARTTLS\r\n", "STARTTLS", ""},
		{"auth", "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "AUTH", "PLAIN AGFsaWNlAHNlY3JldA=="},
		{"mail", "MAIL FROM:<a@b> SIZE=100\r\n", "MAIL", "FROM:<a@b> SIZE=100"},
		{"utf8", "EHLO b\u00fccher.example\r\n", "EHLO", "b\u00fccher.example"},
		{"extension verb", "X-FOO bar\r\n", "X-FOO", "bar"},
		{"at the limit", "EHLO " + strings.Repeat("x", 512-7) + "\r\n", "EHLO", strings.Repeat("x", 505)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReader(tc.in)
			cmd, err := r.ReadCommand()
			if err != nil {
				t.Fatal(err)
			}
			if cmd.Verb != tc.verb || cmd.Params != tc.params {
				t.Errorf("got %+v, want %s %q", cmd, tc.verb, tc.params)
			}
			if _, err := r.ReadCommand(); err != io.EOF {
				t.Errorf("then %v, want EOF", err)
			}
		})
	}
}

// TestReadCommandErrors: each bad line gives its reply and, unless fatal,
// the next command ("NOOP") is read.
func TestReadCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, reply string
		fatal           bool
	}{
		{"empty", "\r\n", "500 5.5.2 Empty command\r\n", false},
		{"bad verb", "1HLO x\r\n", "500 5.5.2 Syntax error, command unrecognized\r\n", false},
		{"leading space", " EHLO x\r\n", "500 5.5.2 Syntax error, command unrecognized\r\n", false},
		{"NUL", "EHLO a\x00b\r\n", "500 5.5.2 Invalid character 0x00 in command\r\n", false},
		{"bare CR", "EHLO a\rb\r\n", "500 5.5.2 Invalid character 0x0d in command\r\n", false},
		{"bare LF", "EHLO a\n", "500 5.5.2 Bare LF is not a line end (RFC 5321 section 2.3.8)\r\n", false},
		{"one over the limit", "EHLO " + strings.Repeat("x", 512-6) + "\r\n", "500 5.5.2 Line too long (limit 512 octets)\r\n", true},
		{"far over", strings.Repeat("x", 5000), "500 5.5.2 Line too long (limit 512 octets)\r\n", true},
		{"auth initial response over the limit", "AUTH XOAUTH2 " + strings.Repeat("x", 600) + "\r\n", "500 5.5.2 Line too long (limit 512 octets)\r\n", true},
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
			if cmd, err := r.ReadCommand(); err != nil || cmd.Verb != "NOOP" {
				t.Errorf("after the error: %+v %v, want NOOP", cmd, err)
			}
		})
	}
}

// TestArgs: parameters are split at SP only, a run of SP counting once.
func TestArgs(t *testing.T) {
	for params, want := range map[string][]string{
		"":                    nil,
		"PLAIN  AGFAYgBj":     {"PLAIN", "AGFAYgBj"},
		"PLAIN\u00a0AGFAYgBj": {"PLAIN\u00a0AGFAYgBj"},
		"a\u0085b \u2003c":    {"a\u0085b", "\u2003c"},
		" client.test ":       {"client.test"},
	} {
		if got := (&Command{Verb: "AUTH", Params: params}).Args(); !slices.Equal(got, want) {
			t.Errorf("Args(%q) = %q, want %q", params, got, want)
		}
	}
}

func TestBareLFAllowed(t *testing.T) {
	r := newTestReader("EHLO x\nQUIT\n")
	r.AllowBareLF = true
	for _, want := range []string{"EHLO", "QUIT"} {
		if cmd, err := r.ReadCommand(); err != nil || cmd.Verb != want {
			t.Fatalf("got %+v %v, want %s", cmd, err, want)
		}
	}
}

func TestMaxAuthCommand(t *testing.T) {
	ir := strings.Repeat("A", 1500)
	r := newTestReader("AUTH XOAUTH2 " + ir + "\r\nEHLO " + strings.Repeat("x", 600) + "\r\n")
	r.MaxAuthCommand = 2048
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Verb != "AUTH" || cmd.Args()[1] != ir {
		t.Fatalf("got %+v %v", cmd, err)
	}
	_, err = r.ReadCommand()
	var we *Error
	if !errors.As(err, &we) || !we.Fatal || !strings.Contains(we.Text, "limit 512") {
		t.Fatalf("EHLO over 512 octets: got %v", err)
	}
}

// TestPipelinedAfterSTARTTLS: what the client sent behind STARTTLS is
// visible as Buffered, for the caller to discard.
func TestPipelinedAfterSTARTTLS(t *testing.T) {
	r := NewReader(bufio.NewReader(strings.NewReader("STARTTLS\r\nAUTH PLAIN x\r\n")))
	if cmd, err := r.ReadCommand(); err != nil || cmd.Verb != "STARTTLS" {
		t.Fatalf("got %+v %v", cmd, err)
	}
	if n := r.Buffered(); n != len("AUTH PLAIN x\r\n") {
		t.Errorf("Buffered %d", n)
	}
}

func TestAuthLine(t *testing.T) {
	r := newTestReader("AGFsaWNlAHNlY3JldA==\r\n*\r\n\r\nnot base64!\r\nYQ\r\nYQ==\n" + strings.Repeat("A", 12287))
	for _, tc := range []struct {
		data   string
		cancel bool
		reply  string
	}{
		{data: "\x00alice\x00secret"},
		{cancel: true},
		{data: ""},
		{reply: "501 5.5.2 Cannot Base64-decode Client responses\r\n"},
		{reply: "501 5.5.2 Cannot Base64-decode Client responses\r\n"},
		{reply: "500 5.5.2 Bare LF is not a line end (RFC 5321 section 2.3.8)\r\n"},
		{reply: "500 5.5.6 Authentication Exchange line is too long (limit 12288 octets)\r\n"},
	} {
		line, err := r.ReadAuthLine()
		if err == nil {
			var data []byte
			var cancel bool
			data, cancel, err = DecodeResponse(line)
			if err == nil && (string(data) != tc.data || cancel != tc.cancel) {
				t.Errorf("%q: got %q cancel %v, want %q %v", line, data, cancel, tc.data, tc.cancel)
			}
		}
		var we *Error
		if tc.reply == "" && err != nil || tc.reply != "" && (!errors.As(err, &we) || string(we.Reply()) != tc.reply) {
			t.Errorf("got error %v, want %q", err, tc.reply)
		}
	}
	if d, err := DecodeInitialResponse("="); err != nil || len(d) != 0 {
		t.Errorf("\"=\": %q %v", d, err)
	}
}

package wire

import (
	"bufio"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func newTestReader(in string) *Reader {
	return NewReader(bufio.NewReaderSize(strings.NewReader(in), 16))
}

func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Command
	}{
		{"no args", "capa\r\n", Command{Name: "CAPA", Rest: ""}},
		{"bare LF", "QUIT\n", Command{Name: "QUIT"}},
		{"user", "USER alice@example.org\r\n", Command{Name: "USER", Args: []string{"alice@example.org"}, Rest: "alice@example.org"}},
		{"pass with spaces", "PASS my secret  pw\r\n", Command{Name: "PASS", Args: []string{"my", "secret", "pw"}, Rest: "my secret  pw"}},
		{"auth with initial response", "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", Command{Name: "AUTH", Args: []string{"PLAIN", "AGFsaWNlAHNlY3JldA=="}, Rest: "PLAIN AGFsaWNlAHNlY3JldA=="}},
		{"utf8 user", "USER j\u00f6rg\r\n", Command{Name: "USER", Args: []string{"j\u00f6rg"}, Rest: "j\u00f6rg"}},
		{"three-letter keyword", "TOP 1 10\r\n", Command{Name: "TOP", Args: []string{"1", "10"}, Rest: "1 10"}},
		{"at the limit", "USER " + strings.Repeat("x", 255-7) + "\r\n", Command{Name: "USER", Args: []string{strings.Repeat("x", 248)}, Rest: strings.Repeat("x", 248)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReader(tc.in)
			cmd, err := r.ReadCommand()
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Args == nil {
				tc.want.Args = []string{}
			}
			if cmd.Args == nil {
				cmd.Args = []string{}
			}
			if !reflect.DeepEqual(*cmd, tc.want) {
				t.Errorf("got %+v, want %+v", *cmd, tc.want)
			}
			if _, err := r.ReadCommand(); err != io.EOF {
				t.Errorf("then %v, want EOF", err)
			}
		})
	}
}

// TestReadCommandErrors: each bad line gives its -ERR and, unless fatal,
// the next command ("NOOP") is read.
func TestReadCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, reply string
		fatal           bool
	}{
		{"empty", "\r\n", "-ERR Empty command\r\n", false},
		{"short keyword", "QU\r\n", "-ERR Invalid command keyword\r\n", false},
		{"long keyword", "QUITS\r\n", "-ERR Invalid command keyword\r\n", false},
		{"8-bit keyword", "QU\xc3\xa4\r\n", "-ERR Invalid command keyword\r\n", false},
		{"NUL", "USER a\x00b\r\n", "-ERR Invalid character 0x00 in command\r\n", false},
		{"bare CR", "USER a\rb\r\n", "-ERR Invalid character 0x0d in command\r\n", false},
		{"tab", "USER\ta\r\n", "-ERR Invalid character 0x09 in command\r\n", false},
		{"one over the limit", "USER " + strings.Repeat("x", 255-6) + "\r\n", "-ERR Command line too long (limit 255 octets)\r\n", true},
		{"one over with bare LF", "USER " + strings.Repeat("x", 249) + "\n", "-ERR Command line too long (limit 255 octets)\r\n", true},
		{"far over", strings.Repeat("x", 5000), "-ERR Command line too long (limit 255 octets)\r\n", true},
		{"auth over the limit", "AUTH PLAIN " + strings.Repeat("x", 300) + "\r\n", "-ERR Command line too long (limit 255 octets)\r\n", true},
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
			if cmd, err := r.ReadCommand(); err != nil || cmd.Name != "NOOP" {
				t.Errorf("after the error: %+v %v, want NOOP", cmd, err)
			}
		})
	}
}

func TestMaxAuthLine(t *testing.T) {
	ir := strings.Repeat("A", 1000)
	r := newTestReader("AUTH XOAUTH2 " + ir + "\r\nUSER " + strings.Repeat("x", 300) + "\r\n")
	r.MaxAuthLine = 2048
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Name != "AUTH" || cmd.Args[1] != ir {
		t.Fatalf("got %+v %v", cmd, err)
	}
	_, err = r.ReadCommand()
	var we *Error
	if !errors.As(err, &we) || !we.Fatal || !strings.Contains(we.Text, "limit 255") {
		t.Fatalf("USER over 255 octets: got %v", err)
	}
}

func TestSASL(t *testing.T) {
	r := newTestReader("AGFsaWNlAHNlY3JldA==\r\n*\r\n\r\nnot base64!\r\nYQ\r\n" + strings.Repeat("A", 12287))
	for _, tc := range []struct {
		data   string
		cancel bool
		errMsg string
	}{
		{data: "\x00alice\x00secret"},
		{cancel: true},
		{data: ""},
		{errMsg: "Invalid base64"},
		{errMsg: "Invalid base64"}, // unpadded
		{errMsg: "SASL response too long (limit 12288 octets)"},
	} {
		line, err := r.ReadSASLResponse()
		if err == nil {
			var data []byte
			var cancel bool
			data, cancel, err = DecodeResponse(line)
			if err == nil && (string(data) != tc.data || cancel != tc.cancel) {
				t.Errorf("%q: got %q cancel %v, want %q %v", line, data, cancel, tc.data, tc.cancel)
			}
		}
		if tc.errMsg == "" && err != nil || tc.errMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.errMsg)) {
			t.Errorf("got error %v, want ~%q", err, tc.errMsg)
		}
	}
	if d, err := DecodeInitialResponse("="); err != nil || len(d) != 0 {
		t.Errorf("\"=\": %q %v", d, err)
	}
	if _, err := DecodeInitialResponse("YQ=\r="); err == nil {
		t.Error("CR inside base64 accepted")
	}
}

// TestXClientKeyword: XCLIENT is read only when the Reader lets it
// through, then within MaxAuthLine; its attributes parse as Dovecot's.
func TestXClientKeyword(t *testing.T) {
	long := "XCLIENT ADDR=10.1.2.3 PORT=5555 FORWARD=" + strings.Repeat("A", 300) + "\r\n"
	r := newTestReader(long + "XCLIENT TTL=x\r\n")
	r.MaxAuthLine = 400
	var we *Error
	if _, err := r.ReadCommand(); !errors.As(err, &we) || !we.Fatal {
		t.Fatalf("XCLIENT from an untrusted client: %v, want a fatal error (line too long)", err)
	}
	r = newTestReader(long + "xclient TTL=x\r\n")
	r.MaxAuthLine, r.XClient = 400, true
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Name != "XCLIENT" {
		t.Fatalf("XCLIENT from a trusted client: %+v, %v", cmd, err)
	}
	x, err := ParseXClient(cmd.Args)
	if want := (XClient{Addr: netip.MustParseAddrPort("10.1.2.3:5555"), TTL: -1}); err != nil || x != want {
		t.Fatalf("got %+v, %v; want %+v", x, err, want)
	}
	if cmd, err = r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseXClient(cmd.Args); err == nil || !strings.Contains(err.Error(), "TTL") {
		t.Fatalf("TTL=x: %v", err)
	}
}

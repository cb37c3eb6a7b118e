package wire

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/lineio/linetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func callReadCommand(br *bufio.Reader) error {
	_, err := NewReader(br).ReadCommand()
	return err
}

func callReadCommandAuth(br *bufio.Reader) error {
	r := NewReader(br)
	r.MaxAuthCommand = 1000
	_, err := r.ReadCommand()
	return err
}

func callReadAuthLine(br *bufio.Reader) error {
	r := NewReader(br)
	r.MaxAuthLine = 100
	_, err := r.ReadAuthLine()
	return err
}

// TestTooLongWithoutNewline: a line over its limit is refused as soon as
// the limit is passed, without waiting for its newline.
func TestTooLongWithoutNewline(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name, sent string
		read       func(*bufio.Reader) error
		reply      string
	}{
		{"command at the limit plus one", "EHLO " + x(512-2-5+1), callReadCommand, "500 5.5.2 Line too long (limit 512 octets)\r\n"},
		{"command at the limit plus CR and a byte", "EHLO " + x(512-2-5) + "\rx", callReadCommand, "500 5.5.2 Line too long (limit 512 octets)\r\n"},
		{"command far over", x(100000), callReadCommand, "500 5.5.2 Line too long (limit 512 octets)\r\n"},
		{"EHLO under a larger AUTH limit", "EHLO " + x(600), callReadCommandAuth, "500 5.5.2 Line too long (limit 512 octets)\r\n"},
		{"AUTH over its own limit", "AUTH PLAIN " + x(1000), callReadCommandAuth, "500 5.5.2 Line too long (limit 1000 octets)\r\n"},
		{"AUTH exchange line", x(101), callReadAuthLine, "500 5.5.6 Authentication Exchange line is too long (limit 100 octets)\r\n"},
	} {
		for _, bufSize := range []int{16, 4096} {
			t.Run(fmt.Sprintf("%s/buffer %d", tc.name, bufSize), func(t *testing.T) {
				err := linetest.ReadStalled(t, tc.sent, bufSize, tc.read)
				var we *Error
				if !errors.As(err, &we) || !we.Fatal || string(we.Reply()) != tc.reply {
					t.Fatalf("got %v, want a fatal %q", err, tc.reply)
				}
			})
		}
	}
}

// TestReplyTooLongWithoutNewline: the same for a backend's reply.
func TestReplyTooLongWithoutNewline(t *testing.T) {
	read := func(br *bufio.Reader) error { _, err := ReadReply(br, 0, 0); return err }
	for _, sent := range []string{"250 " + strings.Repeat("x", 600), "250-a\r\n250-" + strings.Repeat("y", 600)} {
		if err := linetest.ReadStalled(t, sent, 16, read); !errors.Is(err, ErrReply) {
			t.Errorf("got %v, want ErrReply", err)
		}
	}
}

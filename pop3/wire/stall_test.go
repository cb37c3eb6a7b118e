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
	r.MaxAuthLine = 1000
	_, err := r.ReadCommand()
	return err
}

func callReadSASL(br *bufio.Reader) error {
	r := NewReader(br)
	r.MaxSASLLine = 100
	_, err := r.ReadSASLResponse()
	return err
}

// TestTooLongWithoutNewline: a line over its limit is refused as soon as
// the limit is passed, without waiting for its newline.
func TestTooLongWithoutNewline(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name, sent string
		read       func(*bufio.Reader) error
		text       string
	}{
		{"command at the limit plus one", "USER " + x(255-2-5+1), callReadCommand, "limit 255"},
		{"command at the limit plus CR and a byte", "USER " + x(255-2-5) + "\rx", callReadCommand, "limit 255"},
		{"command far over", x(100000), callReadCommand, "limit 255"},
		{"USER under a larger AUTH limit", "USER " + x(300), callReadCommandAuth, "limit 255"},
		{"AUTH over its own limit", "AUTH PLAIN " + x(1000), callReadCommandAuth, "limit 1000"},
		{"SASL line", x(101), callReadSASL, "limit 100"},
	} {
		for _, bufSize := range []int{16, 4096} {
			t.Run(fmt.Sprintf("%s/buffer %d", tc.name, bufSize), func(t *testing.T) {
				err := linetest.ReadStalled(t, tc.sent, bufSize, tc.read)
				var we *Error
				if !errors.As(err, &we) || !we.Fatal || !strings.Contains(we.Text, tc.text) {
					t.Fatalf("got %v, want a fatal *Error ~%q", err, tc.text)
				}
			})
		}
	}
}

// TestResponseTooLongWithoutNewline: the same for a backend's response.
func TestResponseTooLongWithoutNewline(t *testing.T) {
	read := func(br *bufio.Reader) error { _, err := ReadMultiLine(br, 0, 0); return err }
	for _, sent := range []string{"+OK " + strings.Repeat("x", 600), "+OK\r\n" + strings.Repeat("y", 600)} {
		if err := linetest.ReadStalled(t, sent, 16, read); !errors.Is(err, ErrResponse) {
			t.Errorf("got %v, want ErrResponse", err)
		}
	}
}

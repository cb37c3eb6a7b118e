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

func testReader(br *bufio.Reader) *Reader {
	r := NewReader(br)
	r.MaxLine, r.MaxLiteral = 100, 50
	return r
}

func callReadCommand(br *bufio.Reader) error { _, err := testReader(br).ReadCommand(); return err }
func callReadString(br *bufio.Reader) error  { _, err := testReader(br).ReadString(); return err }

// TestTooLongWithoutNewline: a line over the limit is a fatal BYE as soon
// as the limit is passed, without waiting for its newline; so is a
// literal over the limit, without waiting for its bytes.
func TestTooLongWithoutNewline(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tooLong := "BYE \"Command line too long (limit 100 octets)\"\r\n"
	for _, tc := range []struct {
		name, sent string
		read       func(*bufio.Reader) error
		reply      string
	}{
		{"command at the limit plus one", "NOOP " + x(100-5+1), callReadCommand, tooLong},
		{"command at the limit plus CR and a byte", "NOOP " + x(100-5) + "\rx", callReadCommand, tooLong},
		{"command far over", x(100000), callReadCommand, tooLong},
		{"command after a literal", "NOOP {2+}\r\nab " + x(100), callReadCommand, tooLong},
		{"literal over the limit", "NOOP {51+}\r\n" + x(10), callReadCommand, "BYE \"Literal of 51 octets is over the limit of 50\"\r\n"},
		{"sync literal over the limit", "NOOP {51}\r\n", callReadCommand, "BYE \"Literal of 51 octets is over the limit of 50\"\r\n"},
		{"SASL string", "\"" + x(100), callReadString, tooLong},
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

// TestResponseTooLongWithoutNewline: the same for a backend's response.
func TestResponseTooLongWithoutNewline(t *testing.T) {
	read := func(br *bufio.Reader) error { _, _, err := ReadCapabilities(br, 100, 0); return err }
	for _, sent := range []string{"OK \"" + strings.Repeat("x", 600), "\"SASL\" \"PLAIN\"\r\n\"" + strings.Repeat("y", 600), "OK {101}\r\n"} {
		if err := linetest.ReadStalled(t, sent, 16, read); !errors.Is(err, ErrResponse) {
			t.Errorf("got %v, want ErrResponse", err)
		}
	}
}

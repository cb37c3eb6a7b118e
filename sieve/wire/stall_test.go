package wire

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stallTimeout bounds the wait for an answer that must come without any
// more input; it only decides when a broken reader fails the test.
const stallTimeout = 10 * time.Second

// readStalled feeds sent to read through a net.Pipe whose writer then
// keeps the connection open without sending anything more, and returns
// what read gave. It fails the test if read never returns.
func readStalled(t *testing.T, sent string, bufSize int, read func(*bufio.Reader) error) error {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	defer client.Close() // ends stallingClient's write if the reader stopped early
	go stallingClient(client, sent)
	done := make(chan error, 1)
	go readOnce(bufio.NewReaderSize(server, bufSize), read, done)
	select {
	case err := <-done:
		return err
	case <-time.After(stallTimeout):
		client.Close()
		server.Close()
		<-done
		t.Fatalf("no answer to %d bytes while the peer waits", len(sent))
		return nil
	}
}

// stallingClient sends s and then neither sends nor closes.
func stallingClient(c net.Conn, s string) { _, _ = c.Write([]byte(s)) }

func readOnce(br *bufio.Reader, read func(*bufio.Reader) error, done chan<- error) {
	done <- read(br)
}

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
				err := readStalled(t, tc.sent, bufSize, tc.read)
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
		if err := readStalled(t, sent, 16, read); !errors.Is(err, ErrResponse) {
			t.Errorf("got %v, want ErrResponse", err)
		}
	}
}

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
				err := readStalled(t, tc.sent, bufSize, tc.read)
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
		if err := readStalled(t, sent, 16, read); !errors.Is(err, ErrReply) {
			t.Errorf("got %v, want ErrReply", err)
		}
	}
}

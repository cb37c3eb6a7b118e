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

// readStalled feeds sent to a Reader (limits 100 bytes a line and 50 a
// literal, a bufio buffer of bufSize) through a net.Pipe whose writer then
// keeps the connection open without sending anything more, and returns
// what read gave. It fails the test if read never returns.
func readStalled(t *testing.T, sent string, bufSize int, read func(*Reader) error) (conts int, err error) {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	defer client.Close() // ends stallingClient's write if the reader stopped early
	go stallingClient(client, sent)

	r := NewReader(bufio.NewReaderSize(server, bufSize))
	r.MaxLine, r.MaxLiteral = 100, 50
	r.Continue = func(int64) error { conts++; return nil }
	done := make(chan error, 1)
	go readOnce(r, read, done)
	select {
	case err = <-done:
		return conts, err
	case <-time.After(stallTimeout):
		client.Close()
		server.Close()
		<-done
		t.Fatalf("no answer to %d bytes while the client waits", len(sent))
		return 0, nil
	}
}

// stallingClient sends s and then neither sends nor closes: the test
// closes c when it is done.
func stallingClient(c net.Conn, s string) { _, _ = c.Write([]byte(s)) }

func readOnce(r *Reader, read func(*Reader) error, done chan<- error) { done <- read(r) }

func callReadCommand(r *Reader) error { _, err := r.ReadCommand(); return err }
func callReadLine(r *Reader) error    { _, err := r.ReadLine(); return err }
func callReadResponse(r *Reader) error {
	_, err := ReadResponse(r.br, 102)
	return err
}

// TestTooBigWithoutNewline: a line over the limit is a fatal TOOBIG as
// soon as the limit is passed, without waiting for its newline (issue 11);
// so is a literal over the limit, without waiting for its bytes.
func TestTooBigWithoutNewline(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name  string
		sent  string
		read  func(*Reader) error
		tag   string
		text  string // substring
		fatal bool
	}{
		{"command at the limit plus one", "a1 LOGIN " + x(100-9+1), callReadCommand, "a1", "too long", true},
		{"command at the limit plus CR and another byte", "a1 LOGIN " + x(100-9) + "\rx", callReadCommand, "a1", "too long", true},
		{"command far over the limit", "a1 LOGIN " + x(1000), callReadCommand, "a1", "too long", true},
		{"command without a tag", x(101), callReadCommand, "", "too long", true},
		{"command after a literal", "a1 LOGIN {2+}\r\nab " + x(100), callReadCommand, "a1", "too long", true},
		{"command after a synchronizing literal", "a1 LOGIN {2}\r\nab " + x(100), callReadCommand, "a1", "too long", true},
		{"non-synchronizing literal over the limit", "a1 LOGIN {51+}\r\n" + x(10), callReadCommand, "a1", "over the limit", true},
		{"synchronizing literal over the limit", "a1 LOGIN {51}\r\n", callReadCommand, "a1", "over the limit", false},
		{"SASL line at the limit plus one", x(101), callReadLine, "", "too long", true},
		{"SASL line far over the limit", x(1000), callReadLine, "", "too long", true},
	} {
		for _, bufSize := range []int{16, 4096} {
			t.Run(fmt.Sprintf("%s/buffer %d", tc.name, bufSize), func(t *testing.T) {
				conts, err := readStalled(t, tc.sent, bufSize, tc.read)
				var we *Error
				if !errors.As(err, &we) {
					t.Fatalf("got %v, want *Error", err)
				}
				if we.Code != "TOOBIG" || we.Tag != tc.tag || we.Fatal != tc.fatal || !strings.Contains(we.Text, tc.text) {
					t.Errorf("got %+v, want TOOBIG tag %q fatal %v text ~%q", we, tc.tag, tc.fatal, tc.text)
				}
				if strings.Contains(tc.name, "over the limit") && conts != 0 {
					t.Errorf("%d continuation requests for a refused literal", conts)
				}
			})
		}
	}
}

// TestResponseTooLongWithoutNewline: the same for a server's response.
func TestResponseTooLongWithoutNewline(t *testing.T) {
	_, err := readStalled(t, "* OK "+strings.Repeat("x", 101), 16, callReadResponse)
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("got %v, want a too-long error", err)
	}
}

package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// TestWithBuffered: bytes read past a PROXY header (a *pipe.PrefixConn)
// and bytes in our own buffer come out in order, over the raw conn.
func TestWithBuffered(t *testing.T) {
	raw, other := net.Pipe()
	defer raw.Close()
	defer other.Close()
	prefix := strings.Repeat("0123456789", 4)
	pc := pipe.WithPrefix(raw, []byte(prefix))
	br := bufio.NewReaderSize(pc, 16)
	for range 4 {
		if _, err := br.ReadByte(); err != nil {
			t.Fatal(err)
		}
	}
	c := withBuffered(pc, br)
	got, ok := c.(*pipe.PrefixConn)
	if !ok || got.Conn != raw || string(got.Prefix) != prefix[4:] {
		t.Fatalf("got %#v, want a PrefixConn on the raw conn with %q", c, prefix[4:])
	}
	// Nothing buffered, nothing left: the raw conn itself.
	if c := withBuffered(raw, bufio.NewReader(raw)); c != raw {
		t.Errorf("got %T", c)
	}
}

// TestClientWriterDeadlinePerWrite: each write to the client takes a
// deadline of its own, so that a buffered reply that goes out on its own
// long after the last Flush (pipelined commands after an idle while) is
// not cut by that Flush's deadline; before login no write goes past a
// short grace after the login deadline.
func TestClientWriterDeadlinePerWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	ss := &Session{conn: a, deadline: time.Now().Add(time.Minute)}
	_ = a.SetWriteDeadline(time.Unix(1, 0)) // what an earlier Flush may have left
	if _, err := (clientWriter{ss}).Write([]byte("250 OK\r\n")); err != nil {
		t.Fatalf("write after an old deadline passed: %v", err)
	}
	ss.deadline = time.Now().Add(-farewellGrace - time.Second) // the login timeout passed, and the grace
	if _, err := (clientWriter{ss}).Write([]byte("250 OK\r\n")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the login deadline and its grace: %v, want a deadline error", err)
	}
}

// Package urgenttest holds what the urgent-data tests of pipe and its
// event loops share: sending TCP (or AF_UNIX) urgent data between other
// bytes, and reading back exactly what must arrive.
//
//	urgenttest.Send(t, client, []byte("hello"), 'X', []byte("world"), false)
//	urgenttest.ReadExactly(t, server, []byte("helloXworld"))
package urgenttest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FailAfter is the read deadline of these helpers: a failure detector (a
// stalled pipe), never a synchronisation.
const FailAfter = 10 * time.Second

// Send writes b, then urgent as urgent data (MSG_OOB), then after, to c;
// eof half-closes c after that. A socket that has no urgent data skips
// the test.
func Send(t testing.TB, c net.Conn, b []byte, urgent byte, after []byte, eof bool) {
	t.Helper()
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte{urgent}, unix.MSG_OOB, nil)
		return serr != unix.EAGAIN
	}); err != nil {
		t.Fatalf("send urgent: %v", err)
	}
	if errors.Is(serr, unix.EOPNOTSUPP) {
		t.Skipf("no urgent data on %s sockets here: %v", c.LocalAddr().Network(), serr)
	}
	if serr != nil {
		t.Fatalf("send urgent: %v", serr)
	}
	if len(after) > 0 {
		if _, err := c.Write(after); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if eof {
		CloseWrite(t, c)
	}
}

// CloseWrite half-closes c.
func CloseWrite(t testing.TB, c net.Conn) {
	t.Helper()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T cannot half-close", c)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("half-close: %v", err)
	}
}

// Exchange checks the rest of a stream whose urgent byte Send sent from
// sender: receiver reads want; unless the sender half-closed already
// (eof), bytes after the mark flow ("more") before it does; receiver
// meets the end; and the other direction flows too ("ok" back, then its
// end). It returns how many bytes went sender to receiver (want and
// "more"); 2 went back.
func Exchange(t testing.TB, sender, receiver net.Conn, want []byte, eof bool) (sent int) {
	t.Helper()
	ReadExactly(t, receiver, want)
	sent = len(want)
	if !eof {
		if _, err := io.WriteString(sender, "more"); err != nil {
			t.Fatal(err)
		}
		ReadExactly(t, receiver, []byte("more"))
		sent += 4
		CloseWrite(t, sender)
	}
	ReadEOF(t, receiver)
	if _, err := io.WriteString(receiver, "ok"); err != nil {
		t.Fatal(err)
	}
	ReadExactly(t, sender, []byte("ok"))
	CloseWrite(t, receiver)
	ReadEOF(t, sender)
	return sent
}

// WaitDelivered returns once c's peer has received all c sent: TCP's send
// queue is acknowledged; a Unix socket delivers as it writes.
func WaitDelivered(t testing.TB, c net.Conn) {
	t.Helper()
	if _, ok := c.(*net.TCPConn); !ok {
		return
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var q int
		var qerr error
		if err := rc.Control(func(fd uintptr) { q, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || qerr != nil {
			t.Fatalf("SIOCOUTQ: %v %v", err, qerr)
		}
		if q == 0 {
			return
		}
		if i == 1e6 {
			t.Fatalf("%d bytes sent and not acknowledged", q)
		}
		runtime.Gosched()
	}
}

// ReadExactly reads len(want) bytes from c and fails unless they are want.
func ReadExactly(t testing.TB, c net.Conn, want []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(FailAfter))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %s, %v; want %s", Show(got[:n]), err, Show(want))
	}
}

// ReadEOF fails unless c's next read is the end of the stream.
func ReadEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(FailAfter))
	rest, err := io.ReadAll(c)
	if err != nil || len(rest) > 0 {
		t.Fatalf("after the expected bytes: read %s, %v; want the end of the stream", Show(rest), err)
	}
}

// Show quotes b, the middle of a long b elided.
func Show(b []byte) string {
	if len(b) <= 64 {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:16])) + "..." + strconv.Quote(string(b[len(b)-32:]))
}

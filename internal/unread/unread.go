// Package unread drops what a socket received and nobody read before it
// is closed, so that the close sends a FIN rather than a reset: a close
// with unread bytes sends a reset, and the peer may lose what it had not
// read yet. The forwarder does so for a client it refuses (every upstream
// failed, a limit), as HAProxy's clients get a clean EOF.
//
//	unread.Close(conn)      // a net.Conn on a socket
//	unread.Drop(fd); close  // a descriptor an event loop owns
package unread

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Drop reads and drops what fd has received, up to 256 KiB and without
// waiting.
func Drop(fd int) {
	if fd < 0 {
		return
	}
	var buf [16 << 10]byte
	for range 16 {
		if n, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT); err != nil || n == 0 {
			return
		}
	}
}

// Close drops what c's socket has received (Drop) and closes c; a conn
// that is not a socket is only closed.
func Close(c net.Conn) error {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Read(func(fd uintptr) bool {
				Drop(int(fd))
				return true // never wait
			})
		}
	}
	return c.Close()
}

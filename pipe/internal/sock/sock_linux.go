//go:build linux

package sock

import (
	"errors"
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this build can wait, peek and splice.
const Supported = true

// WaitReadable parks the calling goroutine until the socket behind rc has
// bytes queued, has reached end of stream, or has an error pending; the
// next read tells which. It reads nothing: the bytes stay queued in the
// kernel, so a waiting caller needs no buffer. Spurious wakeups of the
// poller are absorbed here. It allocates nothing.
func WaitReadable(rc syscall.RawConn) error { return rc.Read(peekReady) }

// peekReady is the RawConn callback of WaitReadable: it has no state, so
// passing it allocates nothing. It asks ppoll(2) with a zero timeout rather
// than peeking with recv(2), because a recv would consume a pending socket
// error (ECONNRESET) that the next read must report.
func peekReady(fd uintptr) bool {
	for {
		pfd := unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}
		var ts unix.Timespec
		n, _, e := syscall.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1,
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return true // let the read report it
		}
		return n > 0 // 0: nothing yet (or a spurious wakeup): keep waiting
	}
}

// Buffer is a user-space copy buffer.
type Buffer struct {
	B      []byte
	n      int
	sysErr error
}

// NewBuffer returns a Buffer of size bytes.
func NewBuffer(size int) *Buffer { return &Buffer{B: make([]byte, size)} }

// TryRead reads what is queued on the socket fd into b.B without waiting,
// for use inside a syscall.RawConn.Read callback. It reports again when
// nothing was queued; otherwise LastRead has the outcome.
func (b *Buffer) TryRead(fd uintptr) (again bool) {
	for {
		m, e := unix.Read(int(fd), b.B)
		switch e {
		case nil:
			b.n, b.sysErr = m, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return true
		default:
			b.n, b.sysErr = 0, wrap("read", e)
		}
		return false
	}
}

// LastRead returns the outcome of the last TryRead that did not report
// again: n == 0 with a nil error is end of stream.
func (b *Buffer) LastRead() (int, error) { return b.n, b.sysErr }

// Queued returns how many bytes are queued for reading on the socket.
func Queued(rc syscall.RawConn) (n int, err error) {
	var sysErr error
	cerr := rc.Control(func(fd uintptr) {
		n, sysErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	if cerr != nil {
		return 0, cerr
	}
	if sysErr != nil {
		return 0, wrap("ioctl SIOCINQ", sysErr)
	}
	return n, nil
}

// TrySpliceIn moves up to max bytes queued on the socket fd into the
// (empty) pipe without waiting, for use inside a syscall.RawConn.Read
// callback. It reports again when nothing was queued; otherwise LastIn has
// the outcome.
func (p *Pipe) TrySpliceIn(fd uintptr, max int) (again bool) {
	for {
		m, e := unix.Splice(int(fd), nil, p.w, nil, max, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch e {
		case nil:
			p.n, p.sysErr = m, nil
			p.buffered += int(m)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return true
		default:
			p.n, p.sysErr = 0, wrap("splice from socket", e)
		}
		return false
	}
}

// LastIn returns the outcome of the last TrySpliceIn that did not report
// again: n == 0 with a nil error is end of stream.
func (p *Pipe) LastIn() (int, error) { return int(p.n), p.sysErr }

// SpliceOut moves everything buffered in the pipe to the socket, waiting
// for the socket to become writable as needed (write deadlines apply). It
// returns the bytes moved, also on error.
func (p *Pipe) SpliceOut(rc syscall.RawConn) (n int64, err error) {
	p.n, p.sysErr = 0, nil
	err = rc.Write(p.outFn)
	if err == nil {
		err = p.sysErr
	}
	return p.n, err
}

func (p *Pipe) spliceOut(fd uintptr) bool {
	for p.buffered > 0 {
		m, e := unix.Splice(p.r, nil, int(fd), nil, p.buffered, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false // socket buffer full: wait for writability
		case e != nil:
			p.sysErr = wrap("splice to socket", e)
			return true
		case m == 0:
			p.sysErr = io.ErrUnexpectedEOF
			return true
		}
		p.buffered -= int(m)
		p.n += m
	}
	return true
}

func wrap(op string, e error) error {
	var errno syscall.Errno
	if errors.As(e, &errno) {
		return &wrappedErrno{op: op, errno: errno}
	}
	return e
}

// wrappedErrno is an os.SyscallError look-alike that keeps errors.Is
// working against syscall.Errno values (ECONNRESET, EPIPE...).
type wrappedErrno struct {
	op    string
	errno syscall.Errno
}

func (e *wrappedErrno) Error() string { return e.op + ": " + e.errno.Error() }
func (e *wrappedErrno) Unwrap() error { return e.errno }

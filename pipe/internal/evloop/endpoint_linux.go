package evloop

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// Supported is true where the event loops run (Linux).
const Supported = true

// Endpoint is a non-blocking stream socket descriptor that a Group can own,
// with the record layer of the TLS connection over it, if any. Get one from
// FromConn, TakePair or TakeConns; the zero value is invalid.
type Endpoint struct {
	fd  int           // descriptor + 1, so that the zero value is invalid
	tls *tlsrec.State // nil for a plain socket
}

// Qualifies reports whether c can be taken by FromConn: a *net.TCPConn or
// a *net.UnixConn (FromConn also checks that the socket is SOCK_STREAM).
// Wrappers (*tls.Conn, a conn carrying peeked bytes) do not qualify.
func Qualifies(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// FromConn takes the socket out of c, which must be a *net.TCPConn or a
// *net.UnixConn of type SOCK_STREAM with nothing buffered in user space
// (the bytes a pipe.PrefixConn carries go to Group.AddWithPrefix).
//
// The socket must not have SO_LINGER above 0: the loop's close would block
// on it.
//
// On success the descriptor is duplicated (close-on-exec, non-blocking) and c
// is closed, which removes c's descriptor from Go's netpoller: Go never reads,
// writes or polls the socket again and the Endpoint is its only owner. On
// error c is left untouched. To take both sides of a pair all or nothing,
// use TakePair.
func FromConn(c net.Conn) (Endpoint, error) {
	fd, err := dupConn(c)
	if err != nil {
		return Endpoint{}, err
	}
	c.Close() // deregisters Go's copy from the netpoller; the socket lives on in fd
	return Endpoint{fd: fd + 1}, nil
}

// TakePair is FromConn for both conns of a pair, all or nothing: on error
// neither a nor b has been touched, so the caller can still join them with
// the goroutine flavour.
func TakePair(a, b net.Conn) (Endpoint, Endpoint, error) {
	return TakeConns(Conn{Sock: a}, Conn{Sock: b})
}

// TakeConns is TakePair for sides that may run TLS: the loop then carries
// on their record layer (TLS 1.3 only) and the *tls.Conn must never be used
// again, not even closed: its socket is closed under it. On error nothing
// has been touched and the conns are still the caller's; errors for sides
// the loops cannot take wrap ErrUnsupported.
func TakeConns(a, b Conn) (Endpoint, Endpoint, error) {
	var ta, tb *tlsrec.State
	var err error
	if a.TLS != nil {
		if ta, err = exportTLS(a.TLS); err != nil {
			return Endpoint{}, Endpoint{}, err
		}
	}
	if b.TLS != nil {
		if tb, err = exportTLS(b.TLS); err != nil {
			return Endpoint{}, Endpoint{}, err
		}
	}
	fa, err := dupConn(a.Sock)
	if err != nil {
		return Endpoint{}, Endpoint{}, err
	}
	fb, err := dupConn(b.Sock)
	if err != nil {
		unix.Close(fa)
		return Endpoint{}, Endpoint{}, err
	}
	a.Sock.Close()
	b.Sock.Close()
	return Endpoint{fd: fa + 1, tls: ta}, Endpoint{fd: fb + 1, tls: tb}, nil
}

func exportTLS(c *tls.Conn) (*tlsrec.State, error) {
	st, err := tlsrec.Export(c)
	if err != nil {
		return nil, fmt.Errorf("evloop: take TLS connection %s: %w", c.LocalAddr(), errorsJoinUnsupported(err))
	}
	return st, nil
}

// errorsJoinUnsupported makes tlsrec's ErrUnsupported also this package's.
func errorsJoinUnsupported(err error) error {
	if errors.Is(err, tlsrec.ErrUnsupported) {
		return fmt.Errorf("%w (%w)", ErrUnsupported, err)
	}
	return err
}

// dupConn returns a non-blocking, close-on-exec duplicate of c's socket.
func dupConn(c net.Conn) (int, error) {
	var kind string
	switch c.(type) {
	case *net.TCPConn:
		kind = "tcp"
	case *net.UnixConn:
		kind = "unix"
	default:
		return -1, fmt.Errorf("evloop: take socket from %T: %w (need *net.TCPConn or *net.UnixConn)", c, errConnType)
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("evloop: take %s socket %s: %w", kind, c.LocalAddr(), err)
	}
	nfd := -1
	var derr error
	cerr := rc.Control(func(fd uintptr) {
		// A *net.TCPConn is always SOCK_STREAM (net.FileConn makes one
		// only of that type); a *net.UnixConn may be SOCK_SEQPACKET.
		if kind == "unix" {
			typ, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
			if err != nil {
				derr = fmt.Errorf("getsockopt SO_TYPE: %w", err)
				return
			}
			if typ != unix.SOCK_STREAM {
				derr = fmt.Errorf("socket type %d: %w", typ, errConnType)
				return
			}
		}
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if derr != nil {
			derr = fmt.Errorf("dup: %w", derr)
		}
	})
	if cerr == nil {
		cerr = derr
	}
	if cerr != nil {
		return -1, fmt.Errorf("evloop: take %s socket %s: %w", kind, c.LocalAddr(), cerr)
	}
	// O_NONBLOCK belongs to the open file, shared with Go's descriptor:
	// Go makes every socket of a *net.TCPConn or *net.UnixConn
	// non-blocking (SOCK_NONBLOCK, or set by net.FileConn), so the
	// duplicate is non-blocking too, without a system call to check.
	return nfd, nil
}

// Valid reports whether e holds a descriptor.
func (e Endpoint) Valid() bool { return e.fd > 0 }

// Close closes the descriptor of an Endpoint that was not handed to a Group
// (or whose Add failed).
func (e Endpoint) Close() error {
	if e.fd <= 0 {
		return nil
	}
	return unix.Close(e.fd - 1)
}

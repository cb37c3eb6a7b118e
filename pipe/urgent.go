package pipe

import "golang.org/x/sys/unix"

// Urgent data (TCP MSG_OOB, as telnet and FTP's ABOR send it; AF_UNIX has
// it too since Linux 5.15) is carried in band: the urgent byte reaches the
// other side in its place in the stream; its urgency does not.
//
// On Linux a read stops short before the urgent mark, and a read at the
// mark skips the urgent byte (it is lost from the stream) unless the socket
// has SO_OOBINLINE; splice stops at the mark, inline or not, and moves
// nothing there (EAGAIN, or 0 once a FIN has come) until a read has crossed
// it. (net/ipv4/tcp.c: tcp_recvmsg_locked, tcp_read_sock, tcp_splice_read.)
//
// A pipe on goroutines therefore sets SO_OOBINLINE on every socket it reads
// before its first read (one setsockopt per socket), reads until EAGAIN
// (a short read is not taken for a drained socket) and, when it splices,
// lets a read rather than a splice find the socket drained or ended
// (copySplice). Go's netpoller does not report EPOLLPRI, so there is no
// cheaper moment at which to learn that urgent data has come: a read that
// crosses the mark of a socket that is not inline has already lost the
// byte. The event loops learn it from EPOLLPRI and make sockets inline
// lazily (pipe/internal/evloop/urgent_linux.go).

// inlineUrgent sets SO_OOBINLINE on the endpoint's socket, once. An error
// (an MPTCP socket refuses it, and carries no urgent data) leaves the
// socket as it was.
func (e *endpoint) inlineUrgent() {
	if e.oobInline {
		return
	}
	e.oobInline = true
	_ = e.raw.Control(setOOBInline)
}

// setOOBInline is inlineUrgent's RawConn callback: a func value with no
// state, so passing it allocates nothing.
func setOOBInline(fd uintptr) {
	_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
}

package evloop

import "golang.org/x/sys/unix"

// Urgent data (TCP MSG_OOB, as telnet and FTP's ABOR send it; AF_UNIX has
// it too since Linux 5.15) is carried in band: the urgent byte reaches the
// other side in its place in the stream, its urgency does not.
//
// What Linux does with an urgent mark in a TCP receive queue
// (net/ipv4/tcp.c: tcp_recvmsg_locked, tcp_read_sock, tcp_splice_read,
// tcp_poll; net/ipv4/tcp_input.c: tcp_urg), AF_UNIX's oob_skb alike:
//   - read stops short before the mark, so a short read no longer proves
//     the queue drained (relay relies on that);
//   - a read at the mark skips the urgent byte, and it is lost from the
//     stream, unless SO_OOBINLINE is set on the socket;
//   - splice stops at the mark, SO_OOBINLINE or not, and moves nothing
//     there: EAGAIN, or 0 once a FIN has come (not the end of the stream),
//     until a read has crossed the mark (AF_UNIX's splice crosses it, and
//     drops the byte without SO_OOBINLINE);
//   - poll reports EPOLLPRI from the moment the urgent byte is queued
//     (before the sk_data_ready that wakes epoll) until a read crosses the
//     mark, SO_OOBINLINE or not.
//
// So the loop registers EPOLLPRI (no cost until urgent data comes) and:
//   - an event with EPOLLPRI makes the socket inline (urgentData) and marks
//     it urgent: relay then reads on after a short read until EAGAIN, and a
//     bulk direction whose splice moves nothing turns to relay's read, which
//     crosses the mark and delivers the byte;
//   - a splice returning 0 is not taken for the end of the stream: relay's
//     read (which returns 0 only there) decides;
//   - a direction makes its source inline before its first bulk read (a
//     splice, or a read into a buffer with Config.NoSplice) and before any
//     read of a TLS pair (pumpTLS reads on until EAGAIN): one setsockopt,
//     once per socket, and only for a socket that filled the scratch buffer
//     in one read or is part of a TLS pair.
//
// That leaves relay's reads of a quiet plain pair, which stay without a
// system call of their own. A read on a socket that is not inline is one of
// these, and cannot reach an urgent byte it has not been told of:
//   - the first read after an event: a mark already queued at that event
//     would have carried EPOLLPRI, which made the socket inline first; a
//     mark that came after it lies behind the bytes the event reported, and
//     the read stops short before it (readable = false, and the mark's
//     sk_data_ready raised an edge that will carry EPOLLPRI);
//   - a further read after a short one, only once an event has carried
//     RDHUP, HUP or ERR (hup): the FIN came after every mark of the stream,
//     so that event would have carried EPOLLPRI for any mark still queued.
//
// A bulk splice that returns EAGAIN at a mark that no event has reported
// yet waits for that event: the mark's sk_data_ready came after the last
// event that returned the socket (one returned later would have carried
// EPOLLPRI and set urgent, which only a read that found the socket drained,
// so past the mark, clears), so an edge is queued.
//
// A listener the loops accept on is made inline once (Group.Listen);
// sockets accept(2) returns inherit it (sk_clone_lock copies the socket's
// flags), so an accepted side needs no call at all. Go's listeners are
// MPTCP by default, whose listening socket refuses SO_OOBINLINE: their
// accepted sockets are then made inline lazily, like the others.
//
// The one case left is a sender whose urgent pointer points back into
// bytes already received out of order: the kernel cannot find the urgent
// byte (tcp_check_urg: "we are not able to fetch such data") and reports
// no EPOLLPRI, while reads still stop at the mark; such a pair waits for
// more bytes from that sender or for its idle timeout.

// urgentData handles an event carrying EPOLLPRI on e: urgent data is
// queued. The socket is made inline before anything reads it.
func (l *loop) urgentData(e *end) {
	l.makeInline(e)
	e.urgent = true
}

// makeInline sets SO_OOBINLINE on e's socket, once. An error (an MPTCP
// socket refuses it, and carries no urgent data) leaves the socket as it
// was: there is nothing better to do than move its bytes as before.
func (l *loop) makeInline(e *end) {
	if e.oobInline {
		return
	}
	e.oobInline = true
	rawSetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
}

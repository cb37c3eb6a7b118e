// Package sock holds the Linux specifics of the pipe core: waiting for a
// socket to become readable without reading from it, non-blocking reads and
// splice(2) through a small pool of kernel pipes.
//
// Waiting goes through Go's network poller (syscall.RawConn), so no thread
// is blocked and deadlines and Close interrupt a wait exactly as they
// interrupt a Read. The Try functions run inside a RawConn.Read callback:
// the caller takes a pipe or buffer, tries, and gives it back before the
// callback returns false to park, so a parked reader holds nothing. On
// other systems Supported is false and the pipe core falls back to plain
// reads and writes.
//
//	err := src.Read(func(fd uintptr) bool { // src, dst syscall.RawConn
//		if p == nil {
//			p, _ = sock.GetPipe()
//		}
//		if p.TrySpliceIn(fd, sock.MaxSplice) { // nothing queued
//			sock.PutPipe(p)
//			p = nil
//			return false // park
//		}
//		return true
//	})
//	n, err := p.LastIn() // n == 0: end of stream
//	_, err = p.SpliceOut(dst) // waits for dst to be writable
package sock

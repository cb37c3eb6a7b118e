// Package sock holds the Linux specifics of the pipe core: waiting for a
// socket to become readable without reading from it, non-blocking reads, and
// splice(2) through a small pool of kernel pipes.
//
// Every function takes the socket as a syscall.RawConn, so that waiting goes
// through Go's network poller (no thread is blocked) and deadlines and Close
// interrupt a wait exactly as they interrupt a Read. On other systems
// Supported is false and the functions return errors.ErrUnsupported; the pipe
// core then falls back to plain reads and writes.
//
//	err := sock.WaitReadable(src) // parks until data, EOF or an error
//	p, err := sock.GetPipe()
//	n, again, err := p.SpliceIn(src, sock.MaxSplice) // n == 0: EOF
//	_, err = p.SpliceOut(dst)
//	sock.PutPipe(p)
package sock

package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// protocolVersion is sent in the hello; a peer with another is refused.
const protocolVersion = 1

type helloMeta struct {
	Protocol int `json:"protocol"`
	// Taken: this old process reads the new one's confirmations of the
	// messages it takes (Outbox); one of an earlier release does not.
	Taken bool `json:"taken,omitempty"`
}

// Conn is one end of the hand-over channel. One goroutine may Send while
// another Recvs; Sends (and Recvs) are serialised among themselves.
type Conn struct {
	uc *net.UnixConn
	rc syscall.RawConn

	// acks: both sides confirm the messages taken (RecvEach, Outbox): set
	// by the hello (new process) and by Ready (old process).
	acks bool

	rmu  sync.Mutex
	rerr error // the stream is out of step for reading; rmu

	wmu  sync.Mutex
	werr error  // for writing; wmu
	wbuf []byte // the frame being sent, zeroed once sent (it may hold secrets); wmu
}

func newConn(uc *net.UnixConn) (*Conn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("upgrade: raw socket: %w", err)
	}
	return &Conn{uc: uc, rc: rc}, nil
}

// Dial connects the new process to the old one's upgrade socket at path,
// checks that the old process runs as our uid, and waits for its hello.
// ctx bounds the whole; a refusal by the old side is returned with its
// reason.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("upgrade: connecting to %s: %w", path, err)
	}
	c, err := newConn(nc.(*net.UnixConn))
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.checkPeer(); err != nil {
		c.Close()
		return nil, err
	}
	kind, meta, files, err := c.Recv(ctx)
	closeFiles(files)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade: waiting for the hello of %s: %w", path, err)
	}
	switch kind {
	case kindHello:
		var h helloMeta
		if err := json.Unmarshal(meta, &h); err != nil || h.Protocol != protocolVersion {
			c.Close()
			return nil, fmt.Errorf("upgrade: %s speaks hand-over protocol %q, want version %d", path, meta, protocolVersion)
		}
		c.acks = h.Taken
		return c, nil
	case kindRefused:
		c.Close()
		return nil, fmt.Errorf("upgrade: %s refused us: %s", path, meta)
	default:
		c.Close()
		return nil, fmt.Errorf("upgrade: %s sent %q before its hello", path, kind)
	}
}

// checkPeer refuses a peer of another uid.
func (c *Conn) checkPeer() error {
	var cred *unix.Ucred
	var cerr error
	if err := c.rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("upgrade: peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("upgrade: peer credentials (SO_PEERCRED): %w", cerr)
	}
	if want := uint32(os.Getuid()); cred.Uid != want {
		return &PeerError{PID: cred.Pid, UID: cred.Uid, WantUID: want}
	}
	return nil
}

// Send sends one message: kind (1 to MaxKind bytes of printable ASCII),
// meta (at most MaxMeta bytes) and up to MaxFiles open files, which stay
// open here (the peer gets its own descriptors). ctx bounds the wait for
// the peer to take the message.
func (c *Conn) Send(ctx context.Context, kind string, meta []byte, files ...*os.File) error {
	if err := checkMessage(kind, meta, len(files)); err != nil {
		return err
	}
	fds, err := dupFiles(files)
	if err != nil {
		return err
	}
	defer closeFDs(fds)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	// The frame copies meta (a pipe's TLS secrets): zeroed once sent, as
	// the caller zeroes meta, so that no copy stays in this process.
	frame := appendFrame(c.wbuf[:0], kind, meta, len(fds))
	defer func() {
		clear(frame)
		c.wbuf = frame[:0]
	}()
	release := watch(ctx, c.uc.SetWriteDeadline)
	err = c.writeFrame(frame, oob)
	release()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		c.werr = fmt.Errorf("upgrade: sending %q: %w", kind, err)
		return c.werr
	}
	return nil
}

// writeFrame sends frame with oob attached to its first bytes.
func (c *Conn) writeFrame(frame, oob []byte) error {
	var n int
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			n, serr = unix.SendmsgN(int(fd), frame, oob, nil, unix.MSG_NOSIGNAL)
			if serr != unix.EINTR {
				break
			}
		}
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if n == len(frame) {
		return nil // (a Write of nothing would still fail on a closed peer)
	}
	// The descriptors went with the first n bytes; the rest is plain data.
	_, err = c.uc.Write(frame[n:])
	return err
}

// Recv receives one message. The caller owns the returned files (close
// them). ctx bounds the wait.
func (c *Conn) Recv(ctx context.Context) (kind string, meta []byte, files []*os.File, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return "", nil, nil, c.rerr
	}
	release := watch(ctx, c.uc.SetReadDeadline)
	var fds []int
	kind, meta, err = c.readFrame(&fds)
	release()
	if err != nil {
		closeFDs(fds)
		if ctx.Err() != nil {
			err = fmt.Errorf("upgrade: receiving: %w", ctx.Err())
		} else if err != io.EOF {
			err = fmt.Errorf("upgrade: receiving: %w", err)
		}
		c.rerr = err
		return "", nil, nil, err
	}
	files = make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("upgrade %s file %d", kind, i))
	}
	return kind, meta, files, nil
}

// readFrame reads one frame; every descriptor received goes into *fds,
// also on error.
func (c *Conn) readFrame(fds *[]int) (string, []byte, error) {
	oob := make([]byte, unix.CmsgSpace(MaxFiles*4))
	hdr := make([]byte, headerLen)
	if err := c.readFull(hdr, oob, fds, true); err != nil {
		return "", nil, err
	}
	h, err := parseHeader(hdr)
	if err != nil {
		return "", nil, err
	}
	body := make([]byte, h.kindLen+h.metaLen)
	if err := c.readFull(body, oob, fds, false); err != nil {
		return "", nil, err
	}
	if len(*fds) != h.nfiles {
		return "", nil, fmt.Errorf("message announces %d files and carries %d", h.nfiles, len(*fds))
	}
	kind := string(body[:h.kindLen])
	if err := checkKind(kind); err != nil {
		return "", nil, err
	}
	return kind, body[h.kindLen:], nil
}

// readFull fills b with recvmsg, collecting the descriptors that come
// along. An EOF before the first byte of a frame is io.EOF.
func (c *Conn) readFull(b, oob []byte, fds *[]int, frameStart bool) error {
	for got := 0; got < len(b); {
		var n, oobn, flags int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			for {
				n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), b[got:], oob, unix.MSG_CMSG_CLOEXEC)
				if rerr != unix.EINTR {
					break
				}
			}
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		if oobn > 0 {
			if err := collectFDs(oob[:oobn], fds); err != nil {
				return err
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return fmt.Errorf("control message truncated (MSG_CTRUNC): peer sent more than %d files", MaxFiles)
		}
		if len(*fds) > MaxFiles {
			return fmt.Errorf("peer sent %d files, over the limit of %d", len(*fds), MaxFiles)
		}
		if n == 0 {
			if got == 0 && frameStart {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		got += n
	}
	return nil
}

// collectFDs appends the descriptors of every SCM_RIGHTS message in oob.
func collectFDs(oob []byte, fds *[]int) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("parsing control messages: %w", err)
	}
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		*fds = append(*fds, got...)
		if err != nil {
			return fmt.Errorf("parsing SCM_RIGHTS: %w", err)
		}
	}
	return nil
}

// Close closes the channel; a blocked Send or Recv returns.
func (c *Conn) Close() error { return c.uc.Close() }

// closeRead ends this side's reading: what the peer sent so far can
// still be read, then Recv meets the end, and the peer's sends fail from
// now on (a Unix stream socket's shutdown reaches its peer).
func (c *Conn) closeRead() error { return c.uc.CloseRead() }

// dupFiles duplicates the descriptors of files (close-on-exec), without
// touching the files' blocking mode as File.Fd would.
func dupFiles(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for i, f := range files {
		if f == nil {
			closeFDs(fds)
			return nil, fmt.Errorf("upgrade: file %d is nil", i)
		}
		sc, err := f.SyscallConn()
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("upgrade: file %d (%s): %w", i, f.Name(), err)
		}
		var nfd int
		var derr error
		if err := sc.Control(func(fd uintptr) {
			nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		}); err != nil {
			derr = err
		}
		if derr != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("upgrade: duplicating file %d (%s): %w", i, f.Name(), derr)
		}
		fds = append(fds, nfd)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// watch makes ctx's end set a deadline in the past with set; release
// undoes it (waiting for a concurrent firing) once the operation is over.
func watch(ctx context.Context, set func(time.Time) error) (release func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
			set(time.Time{})
		}
	}
}

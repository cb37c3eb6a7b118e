//go:build linux

package sock

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxSplice is how many bytes one SpliceIn asks for; pipes are sized to it.
const MaxSplice = 1 << 20

// maxFreePipes bounds the kernel pipes kept for reuse. A pipe is held only
// while bytes move, so this bounds the process's spare pipe fds, not how
// many directions can splice at once.
const maxFreePipes = 16

// Pipe is a kernel pipe used as the splice buffer between two sockets.
// Its SpliceOut callback is made once, with the pipe: a pipe is used by one
// direction at a time, so the callback can keep its state here.
type Pipe struct {
	r, w     int
	buffered int // bytes in the pipe
	outFn    func(uintptr) bool
	n        int64
	sysErr   error
}

// pipePool caches empty pipes. It is process-wide on purpose, like the
// runtime's own caches: it is invisible to callers except through its
// bounded fd use, and DrainPipes empties it.
type pipePool struct {
	mu   sync.Mutex
	free []*Pipe
}

var pool pipePool

// GetPipe returns an empty pipe from the pool or a new one.
func GetPipe() (*Pipe, error) {
	pool.mu.Lock()
	if n := len(pool.free); n > 0 {
		p := pool.free[n-1]
		pool.free = pool.free[:n-1]
		pool.mu.Unlock()
		return p, nil
	}
	pool.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("sock: creating splice pipe: %w", err)
	}
	// Larger pipes mean fewer splice calls per megabyte; failure (e.g.
	// pipe-user-pages-soft reached) only costs speed.
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, MaxSplice)
	p := &Pipe{r: fds[0], w: fds[1]}
	p.outFn = p.spliceOut
	return p, nil
}

// PutPipe returns p to the pool, or closes it when it still holds bytes or
// the pool is full.
func PutPipe(p *Pipe) {
	if p.buffered == 0 {
		pool.mu.Lock()
		if len(pool.free) < maxFreePipes {
			pool.free = append(pool.free, p)
			pool.mu.Unlock()
			return
		}
		pool.mu.Unlock()
	}
	p.close()
}

// DrainPipes closes every pooled pipe (tests use it to count fds).
func DrainPipes() {
	pool.mu.Lock()
	free := pool.free
	pool.free = nil
	pool.mu.Unlock()
	for _, p := range free {
		p.close()
	}
}

// Buffered returns the bytes held in the pipe.
func (p *Pipe) Buffered() int { return p.buffered }

func (p *Pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

package gateway

import (
	"sync/atomic"
	"time"
)

// workerIdle is how long a worker waits for its next connection before
// it ends.
const workerIdle = 5 * time.Second

// maxIdleWorkers is how many workers of a listener may wait for a
// connection at once; more end when their connection is served. A burst of
// new connections that many wide starts on grown stacks; idle workers hold
// 8 to 32 KiB of stack each.
const maxIdleWorkers = 128

// workers runs a listener's connections on goroutines that serve one
// connection after another. A new goroutine starts with a small stack and
// grows it, copying it each time, as a login's dialogue goes deeper (the
// TLS handshake, routing, the backend's login): about 8% of the CPU time
// of a plain IMAP login (BenchmarkLoginID, perf). A worker keeps its grown
// stack for the next connection. Workers idle for longer than idle end, as
// do those beyond maxIdle idle ones, and all of them once close is called
// and their task has returned.
type workers struct {
	tasks   chan func() // unbuffered: a send succeeds only to an idle worker
	done    chan struct{}
	idle    time.Duration
	maxIdle int32
	idlers  atomic.Int32
}

// newWorkers makes workers that end after idle without a task, keeping
// at most maxIdle waiting.
func newWorkers(idle time.Duration, maxIdle int32) *workers {
	return &workers{tasks: make(chan func()), done: make(chan struct{}), idle: idle, maxIdle: maxIdle}
}

// run calls f on an idle worker, or on a new one when none is idle.
// It must not be called after close.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		f()
		if w.idlers.Add(1) > w.maxIdle {
			w.idlers.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(w.idle)
		} else {
			idle.Reset(w.idle)
		}
		select {
		case f = <-w.tasks:
			w.idlers.Add(-1)
		case <-idle.C:
			w.idlers.Add(-1)
			return
		case <-w.done:
			w.idlers.Add(-1)
			return
		}
	}
}

// close ends the idle workers, and the busy ones once their task returns.
func (w *workers) close() { close(w.done) }

package gateway

import "time"

// workerIdle is how long a worker waits for its next connection before
// it ends.
const workerIdle = 5 * time.Second

// workers runs a listener's connections on goroutines that serve one
// connection after another. A new goroutine starts with a small stack and
// grows it, copying it each time, as a login's dialogue goes deeper (the
// TLS handshake, routing, the backend's login): about 8% of the CPU time
// of a plain IMAP login (BenchmarkLoginID, perf). A worker keeps its grown
// stack for the next connection. Workers idle for workerIdle end, and all
// of them once close is called and their task has returned.
type workers struct {
	tasks chan func() // unbuffered: a send succeeds only to an idle worker
	done  chan struct{}
	idle  time.Duration
}

// newWorkers makes workers that end after idle without a task.
func newWorkers(idle time.Duration) *workers {
	return &workers{tasks: make(chan func()), done: make(chan struct{}), idle: idle}
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
	f()
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for {
		select {
		case f := <-w.tasks:
			f()
			idle.Reset(w.idle)
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// close ends the idle workers, and the busy ones once their task returns.
func (w *workers) close() { close(w.done) }

package gateway

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// goid returns the calling goroutine's number, from its stack header.
func goid() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// TestWorkersReuse: a task given after another has returned runs on the
// same goroutine (an idle worker takes it), and tasks given while the
// others run get workers of their own.
func TestWorkersReuse(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := newWorkers(time.Hour, 8)
	defer w.close()

	first := make(chan string)
	w.run(func() { first <- goid() })
	id1 := <-first

	// Blocks until the worker is idle and takes it: no other worker
	// exists, and run's send would start one.
	second := make(chan string)
	select {
	case w.tasks <- func() { second <- goid() }:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never became idle")
	}
	if id2 := <-second; id2 != id1 {
		t.Fatalf("second task on goroutine %s, want the first's worker %s", id2, id1)
	}

	// Three tasks that wait for each other can only finish on three
	// goroutines.
	var wg sync.WaitGroup
	wg.Add(3)
	release := make(chan struct{})
	ids := make(chan string, 3)
	for range 3 {
		w.run(func() {
			ids <- goid()
			wg.Done()
			<-release
		})
	}
	wg.Wait()
	close(release)
	seen := map[string]bool{}
	for range 3 {
		seen[<-ids] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 concurrent tasks ran on %d goroutines", len(seen))
	}
}

// TestWorkersEnd: idle workers end after their idle time, and on close;
// a busy worker ends once its task returns after close.
func TestWorkersEnd(t *testing.T) {
	t.Run("idle time", func(t *testing.T) {
		w := newWorkers(time.Millisecond, 8)
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
		goleak.VerifyNone(t) // retries until the worker has ended
		w.close()
	})
	t.Run("close", func(t *testing.T) {
		w := newWorkers(time.Hour, 8)
		started, release := make(chan struct{}), make(chan struct{})
		w.run(func() { close(started); <-release })
		idle := make(chan struct{})
		w.run(func() { close(idle) })
		<-started
		<-idle
		w.close()
		close(release)
		goleak.VerifyNone(t)
	})
}

// TestWorkersMaxIdle: of two workers whose tasks return, the one beyond
// maxIdle ends at once; the other waits for a task.
func TestWorkersMaxIdle(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := newWorkers(time.Hour, 1)
	var started sync.WaitGroup
	started.Add(2)
	release := make(chan struct{})
	for range 2 {
		w.run(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for n := countWorkers(); n != 1; n = countWorkers() {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers left, want 1 (maxIdle)", n)
		}
		runtime.Gosched()
	}
	w.close()
}

// countWorkers counts the goroutines in workers.work.
func countWorkers() int {
	b := make([]byte, 1<<20)
	b = b[:runtime.Stack(b, true)]
	return bytes.Count(b, []byte("gateway.(*workers).work("))
}

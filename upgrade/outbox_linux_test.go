package upgrade

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// readyPair is connPair after the new side said Ready and the old side
// read it, as in an upgrade before the pairs move.
func readyPair(t *testing.T) (oldc, newc *Conn) {
	t.Helper()
	oldc, newc = connPair(t)
	ctx := testCtx(t)
	if err := newc.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := oldc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return oldc, newc
}

// pipeMsg is one message's file: the write end of a pipe whose read end
// the test keeps, so that a held duplicate can be shown to be that pipe.
type pipeMsg struct {
	r, w *os.File
}

func newPipeMsgs(t *testing.T, n int) []pipeMsg {
	t.Helper()
	ms := make([]pipeMsg, n)
	for i := range ms {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		ms[i] = pipeMsg{r, w}
	}
	return ms
}

// sendAll sends one message per pipe through out, its index as value,
// and closes the test's own write ends (the Outbox holds duplicates).
func sendAll(t *testing.T, out *Outbox, ms []pipeMsg) {
	t.Helper()
	for i, m := range ms {
		if err := out.Send(testCtx(t), "pair", []byte(strconv.Itoa(i)), i, m.w); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		m.w.Close()
	}
}

// recorder collects the values an Outbox releases.
type recorder struct {
	mu  sync.Mutex
	got []int
}

func (r *recorder) release(v any) {
	r.mu.Lock()
	r.got = append(r.got, v.(int))
	r.mu.Unlock()
}

func (r *recorder) values() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...)
}

// TestOutboxAllTaken: every message the new process takes is released in
// the old one, and Finish gives nothing back.
func TestOutboxAllTaken(t *testing.T) {
	oldc, newc := readyPair(t)
	ctx := testCtx(t)
	var rec recorder
	out := NewOutbox(oldc, rec.release)
	ms := newPipeMsgs(t, 3)
	before := openFDs(t)
	took := make(chan int, 3)
	recvd := make(chan error, 1)
	go func() {
		recvd <- newc.RecvEach(ctx, "pair", "pairs", func(meta []byte, files []*os.File) {
			n, _ := strconv.Atoi(string(meta))
			CloseFiles(files)
			took <- n
		})
	}()
	sendAll(t, out, ms)
	back, err := out.Finish(ctx, "pairs", nil)
	if err != nil || len(back) != 0 {
		t.Fatalf("Finish: %d back, %v", len(back), err)
	}
	if err := <-recvd; err != nil {
		t.Fatalf("RecvEach: %v", err)
	}
	if got := rec.values(); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("released %v, want [0 1 2]", got)
	}
	for i := range 3 {
		if n := <-took; n != i {
			t.Fatalf("new side took %d as message %d", n, i)
		}
	}
	if after := openFDs(t); after > before-3 { // the 3 write ends closed, no duplicate left
		t.Fatalf("%d descriptors open after, %d before", after, before)
	}
}

// TestOutboxPeerDies: the new process takes the first message and dies:
// Finish gives back the other two, with files that are the very pipes
// sent (a write through them reaches the test's read ends).
func TestOutboxPeerDies(t *testing.T) {
	oldc, newc := readyPair(t)
	ctx := testCtx(t)
	var rec recorder
	out := NewOutbox(oldc, rec.release)
	ms := newPipeMsgs(t, 3)
	recvd := make(chan error, 1)
	allSent := make(chan struct{})
	go func() {
		recvd <- newc.RecvEach(ctx, "pair", "pairs", func(meta []byte, files []*os.File) {
			CloseFiles(files)
			<-allSent
			newc.Close() // dies with the rest unread
		})
	}()
	sendAll(t, out, ms)
	close(allSent)
	back, err := out.Finish(ctx, "pairs", nil)
	if err == nil {
		t.Fatal("Finish: no error, want the peer's end")
	}
	t.Logf("Finish: %v", err)
	<-recvd
	if got := rec.values(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("released %v, want [0]", got)
	}
	if len(back) != 2 || back[0].Value != 1 || back[1].Value != 2 {
		t.Fatalf("back %v, want messages 1 and 2", back)
	}
	for _, h := range back {
		i := h.Value.(int)
		if _, err := h.Files[0].Write([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		CloseFiles(h.Files)
		b, err := io.ReadAll(ms[i].r)
		if err != nil || string(b) != string(rune('a'+i)) {
			t.Fatalf("pipe %d read %q, %v", i, b, err)
		}
	}
}

// TestOutboxPeerHangs: a new process that does not read within the
// old one's wait gets nothing: Finish gives every message back, and when
// the new process reads them later it cannot confirm one, so it uses none.
func TestOutboxPeerHangs(t *testing.T) {
	oldc, newc := readyPair(t)
	var rec recorder
	out := NewOutbox(oldc, rec.release)
	ms := newPipeMsgs(t, 2)
	sendAll(t, out, ms)
	// The deadline is what ends the wait here: the peer never reads.
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	back, err := out.Finish(ctx, "pairs", nil)
	if !errors.Is(err, context.DeadlineExceeded) || len(back) != 2 {
		t.Fatalf("Finish: %d back, %v; want 2 and the deadline", len(back), err)
	}
	for _, h := range back {
		CloseFiles(h.Files)
	}
	used := 0
	err = newc.RecvEach(testCtx(t), "pair", "pairs", func(meta []byte, files []*os.File) {
		used++
		CloseFiles(files)
	})
	if err == nil || used != 0 || len(rec.values()) != 0 {
		t.Fatalf("late RecvEach: used %d, released %v, err %v; want none and an error", used, rec.values(), err)
	}
}

// TestOutboxEarlierPeer: a new process of an earlier release says Ready
// without confirming anything: a message counts as taken once sent.
func TestOutboxEarlierPeer(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	if err := newc.Send(ctx, kindReady, nil); err != nil { // an earlier release's Ready
		t.Fatal(err)
	}
	if err := oldc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	newc.acks = false // nor does it confirm
	var rec recorder
	out := NewOutbox(oldc, rec.release)
	sendAll(t, out, newPipeMsgs(t, 2))
	if got := rec.values(); len(got) != 2 {
		t.Fatalf("released %v once sent, want both", got)
	}
	n := 0
	recvd := make(chan error, 1)
	go func() {
		recvd <- newc.RecvEach(ctx, "pair", "pairs", func(meta []byte, files []*os.File) { n++; CloseFiles(files) })
	}()
	if back, err := out.Finish(ctx, "pairs", nil); err != nil || len(back) != 0 {
		t.Fatalf("Finish: %d back, %v", len(back), err)
	}
	if err := <-recvd; err != nil || n != 2 {
		t.Fatalf("RecvEach: %d, %v", n, err)
	}
}

package gateway

import (
	"bufio"
	"io"
	"sync"
)

// bufPool recycles the buffered readers and writers of sessions and of
// the backend connections they dial: each login used four of 4 KiB, the
// largest part of what it allocated (BenchmarkLoginID's memory profile),
// all of it garbage once the session was piped or ended. The zero value
// is ready.
type bufPool struct {
	r, w sync.Pool
}

func (p *bufPool) reader(c io.Reader) *bufio.Reader {
	if br, ok := p.r.Get().(*bufio.Reader); ok {
		br.Reset(c)
		return br
	}
	return bufio.NewReader(c)
}

func (p *bufPool) writer(c io.Writer) *bufio.Writer {
	if bw, ok := p.w.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		return bw
	}
	return bufio.NewWriter(c)
}

// sessionBufs are the readers and writers one session took from the pool;
// they go back together once the session's goroutine is done with it
// (its protocol has returned, and a hand-over has copied what they
// buffered), so no reference to them is left.
type sessionBufs struct {
	pool *bufPool
	rs   []*bufio.Reader
	ws   []*bufio.Writer
}

func (b *sessionBufs) reader(c io.Reader) *bufio.Reader {
	br := b.pool.reader(c)
	b.rs = append(b.rs, br)
	return br
}

func (b *sessionBufs) writer(c io.Writer) *bufio.Writer {
	bw := b.pool.writer(c)
	b.ws = append(b.ws, bw)
	return bw
}

// release gives every reader and writer back, emptied.
func (b *sessionBufs) release() {
	for _, br := range b.rs {
		br.Reset(nil)
		b.pool.r.Put(br)
	}
	for _, bw := range b.ws {
		bw.Reset(nil)
		b.pool.w.Put(bw)
	}
	b.rs, b.ws = nil, nil
}

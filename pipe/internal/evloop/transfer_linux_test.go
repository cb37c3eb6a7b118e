package evloop

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// pattern is a prime-length random block: streams made of it repeated do not
// line up with pipe or buffer sizes, so lost, doubled or reordered chunks
// change the checksum.
var pattern = func() []byte {
	b := make([]byte, 1048573)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(b)
	return b
}()

// send writes n bytes of pattern to c, half-closes it and returns the sum.
func send(c net.Conn, n int64) ([32]byte, error) {
	h := sha256.New()
	w := io.MultiWriter(c, h)
	for off := int64(0); off < n; {
		chunk := pattern[off%int64(len(pattern)):]
		if int64(len(chunk)) > n-off {
			chunk = chunk[:n-off]
		}
		if _, err := w.Write(chunk); err != nil {
			return [32]byte{}, err
		}
		off += int64(len(chunk))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, c.(interface{ CloseWrite() error }).CloseWrite()
}

// receive reads c to EOF and returns the count and sum.
func receive(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	var sum [32]byte
	h.Sum(sum[:0])
	return n, sum, err
}

type flow struct {
	sent, got [32]byte
	n         int64
	errs      []error
}

// bothWays moves n bytes c1→c2 and n bytes c2→c1 at once.
func bothWays(c1, c2 net.Conn, n int64) (up, down flow) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	run := func(f *flow, from, to net.Conn) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s, err := send(from, n)
			mu.Lock()
			f.sent = s
			if err != nil {
				f.errs = append(f.errs, fmt.Errorf("send: %w", err))
			}
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			m, s, err := receive(to)
			mu.Lock()
			f.n, f.got = m, s
			if err != nil {
				f.errs = append(f.errs, fmt.Errorf("receive: %w", err))
			}
			mu.Unlock()
		}()
	}
	run(&up, c1, c2)
	run(&down, c2, c1)
	wg.Wait()
	return up, down
}

func checkFlow(t *testing.T, name string, f flow, n int64) {
	t.Helper()
	if len(f.errs) > 0 {
		t.Fatalf("%s: %v", name, f.errs)
	}
	if f.n != n || !bytes.Equal(f.sent[:], f.got[:]) {
		t.Fatalf("%s: got %d bytes sum %x, sent %d bytes sum %x", name, f.n, f.got[:4], n, f.sent[:4])
	}
}

func TestBulkBothWays(t *testing.T) {
	cases := []struct {
		name         string
		kindA, kindB string
		noSplice     bool
		size         int64
	}{
		{"tcp-tcp splice", "tcp", "tcp", false, 64 << 20},
		{"unix-unix splice", "unix", "unix", false, 16 << 20},
		{"tcp-unix splice", "tcp", "unix", false, 16 << 20},
		{"tcp-tcp buffer", "tcp", "tcp", true, 16 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGroup(t, Config{Loops: 1, NoSplice: tc.noSplice})
			tp := addPair(t, g, tc.kindA, tc.kindB, core.Options{})
			up, down := bothWays(tp.c1, tp.c2, tc.size)
			checkFlow(t, "a to b", up, tc.size)
			checkFlow(t, "b to a", down, tc.size)
			s := tp.wait(t)
			expect(t, s, s.FirstEnd, core.ReasonEOF)
			if s.FirstEnd == core.SideNone || s.Err != nil {
				t.Fatalf("first end %s, err %v", s.FirstEnd, s.Err)
			}
			if s.BytesAToB != tc.size || s.BytesBToA != tc.size {
				t.Fatalf("stats count %d/%d bytes, want %d each way", s.BytesAToB, s.BytesBToA, tc.size)
			}
		})
	}
}

// TestManyPairs runs 500 pairs at once on two loops, each echoing 16 KiB.
func TestManyPairs(t *testing.T) {
	const pairs, size = 500, 16 << 10
	g := newGroup(t, Config{Loops: 2})
	tps := make([]*testPair, pairs)
	for i := range tps {
		kind := "tcp"
		if i%2 == 1 {
			kind = "unix"
		}
		tps[i] = addPair(t, g, "tcp", kind, core.Options{})
	}
	var wg sync.WaitGroup
	errs := make(chan error, pairs)
	for _, tp := range tps {
		wg.Add(2)
		go func() { // c2 echoes everything back, then half-closes
			defer wg.Done()
			if _, err := io.Copy(tp.c2, tp.c2); err != nil {
				errs <- err
			}
			tp.c2.(interface{ CloseWrite() error }).CloseWrite()
		}()
		go func() {
			defer wg.Done()
			var got []byte
			var rerr error
			done := make(chan struct{})
			go func() { got, rerr = io.ReadAll(tp.c1); close(done) }()
			if _, err := tp.c1.Write(pattern[:size]); err != nil {
				errs <- err
			}
			tp.c1.(interface{ CloseWrite() error }).CloseWrite()
			<-done
			if rerr != nil || !bytes.Equal(got, pattern[:size]) {
				errs <- fmt.Errorf("echo: %d bytes back, err %v", len(got), rerr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tp := range tps {
		s := tp.wait(t)
		if s.Reason != core.ReasonEOF || s.FirstEnd != core.SideA || s.BytesAToB != size || s.BytesBToA != size {
			t.Fatalf("stats %+v", s)
		}
	}
	if n := g.Active(); n != 0 {
		t.Fatalf("Active() = %d after all pairs ended", n)
	}
	if ab, ba := g.Bytes(); ab != pairs*size || ba != pairs*size {
		t.Fatalf("Bytes() = %d, %d; want %d each way", ab, ba, pairs*size)
	}
}

// TestBackpressure: when B's peer does not read, the group stops reading A,
// so A's writer stalls with a bounded amount in flight, and nothing is lost.
// The write deadline only detects the stall; a slow machine can make it fire
// early (smaller count, still a pass) but never makes an unbounded queue pass.
func TestBackpressure(t *testing.T) {
	cases := []struct {
		noSplice bool
		write    int // bytes per write: 1000 keeps reads small (relay path)
	}{{false, 64 << 10}, {true, 64 << 10}, {false, 1000}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("noSplice=%v write=%d", tc.noSplice, tc.write), func(t *testing.T) {
			g := newGroup(t, Config{Loops: 1, NoSplice: tc.noSplice})
			tp := addPair(t, g, "unix", "unix", core.Options{})
			const limit, bound = 256 << 20, 16 << 20
			var n int64
			for n < limit {
				tp.c1.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
				m, err := tp.c1.Write(pattern[:tc.write])
				n += int64(m)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if n >= bound {
				t.Fatalf("writer wrote %d bytes while nobody read: no backpressure (bound %d)", n, bound)
			}
			closeWrite(t, tp.c1)
			got, err := io.Copy(io.Discard, tp.c2)
			if err != nil || got != n {
				t.Fatalf("read %d bytes (err %v), writer wrote %d", got, err, n)
			}
			closeWrite(t, tp.c2)
			expect(t, tp.wait(t), core.SideA, core.ReasonEOF)
		})
	}
}

// TestIdleHoldsNoPipe: after bulk traffic, idle pairs give their kernel
// pipes back: the process holds the four test sockets per pair and at most
// the pool's pipes, not a pipe (two files) per direction.
func TestIdleHoldsNoPipe(t *testing.T) {
	const pairs = 20
	g := newGroup(t, Config{Loops: 1, MaxIdlePipes: 1})
	base := openFDs(t)
	for i := 0; i < pairs; i++ {
		tp := addPair(t, g, "tcp", "tcp", core.Options{})
		for _, d := range [][2]net.Conn{{tp.c1, tp.c2}, {tp.c2, tp.c1}} {
			go d[0].Write(pattern[:256<<10])
			buf := make([]byte, 256<<10)
			if _, err := io.ReadFull(d[1], buf); err != nil {
				t.Fatal(err)
			}
		}
		// A round trip through the same loop after the bulk: the loop has
		// finished the bulk direction's work (released its pipe) before it
		// relays these bytes.
		tp.c1.Write([]byte{1})
		readFull(t, tp.c2, 1)
		tp.c2.Write([]byte{2})
		readFull(t, tp.c1, 1)
	}
	if got, max := openFDs(t), base+pairs*4+2; got > max {
		t.Fatalf("%d open files with %d idle pairs; want at most %d (4 sockets per pair + 1 pooled pipe)", got, pairs, max)
	}
}

func readFull(t *testing.T, c net.Conn, n int) {
	t.Helper()
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

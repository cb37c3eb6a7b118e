package evloop

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/urgenttest"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// TestUrgentData: the loops carry urgent data in band, in its place, with
// no stall and no loss: relaying a quiet direction or after bulk bytes
// (splice, or a buffer with NoSplice), the urgent byte in the middle,
// first or last before EOF, queued before the pair starts or sent while
// it runs, TCP and Unix, both directions.
func TestUrgentData(t *testing.T) {
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 3<<10) // 48 KiB: the direction turns bulk
	cases := []struct {
		name          string
		before, after string
		eof           bool
	}{
		{"middle", "hello", "world", false},
		{"first", "", "world", false},
		{"last-before-eof", "hello", "", true},
	}
	for _, cfg := range []struct {
		name string
		cfg  Config
	}{{"splice", Config{Loops: 1}}, {"nosplice", Config{Loops: 1, NoSplice: true}}} {
		for _, kind := range []string{"tcp", "unix"} {
			for _, c := range cases {
				for _, prefix := range [][]byte{nil, bulk} {
					for _, queued := range []bool{true, false} {
						for _, aToB := range []bool{true, false} {
							name := cfg.name + "/" + kind + "/" + c.name
							if prefix != nil {
								name += "/after-bulk"
							}
							if queued {
								name += "/queued"
							}
							if aToB {
								name += "/a-to-b"
							} else {
								name += "/b-to-a"
							}
							t.Run(name, func(t *testing.T) {
								g := newGroup(t, cfg.cfg)
								c1, a := socketPair(t, kind)
								b, c2 := socketPair(t, kind)
								t.Cleanup(func() { c1.Close(); c2.Close() })
								sender, receiver := c1, c2
								if !aToB {
									sender, receiver = c2, c1
								}
								send := func() {
									urgenttest.Send(t, sender, append(prefix, c.before...), 'X', []byte(c.after), c.eof)
								}
								if queued {
									send()
									urgenttest.WaitDelivered(t, sender)
								}
								ea, eb, err := TakePair(a, b)
								if err != nil {
									t.Fatal(err)
								}
								res := make(chan core.Result, 1)
								if err := g.Add(ea, eb, core.Options{}, func(r core.Result) { res <- r }); err != nil {
									t.Fatal(err)
								}
								if !queued {
									send()
								}
								want := append(append(append([]byte(nil), prefix...), c.before+"X"...), c.after...)
								sent := urgenttest.Exchange(t, sender, receiver, want, c.eof)
								var r core.Result
								select {
								case r = <-res:
								case <-time.After(urgenttest.FailAfter):
									t.Fatal("the pair did not end")
								}
								got, back := r.BytesAToB, r.BytesBToA
								if !aToB {
									got, back = back, got
								}
								if r.Reason != core.ReasonEOF || r.Err != nil || got != int64(sent) || back != 2 {
									t.Fatalf("result %s (%v), %d bytes urgent way, %d back; want eof, %d and 2", r.Reason, r.Err, got, back, sent)
								}
							})
						}
					}
				}
			}
		}
	}
}

// oobInline reads SO_OOBINLINE of both sockets of the pair the loop runs,
// and whether the loop knows them inline, on the loop goroutine.
func oobInline(t *testing.T, pr Pair) (a, b int, knownA, knownB bool) {
	t.Helper()
	type state struct {
		a, b           int
		knownA, knownB bool
	}
	ch := make(chan state, 1)
	pr.l.post(func(*loop) {
		var s state
		s.a, _ = unix.GetsockoptInt(pr.p.a.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE)
		s.b, _ = unix.GetsockoptInt(pr.p.b.fd, unix.SOL_SOCKET, unix.SO_OOBINLINE)
		s.knownA, s.knownB = pr.p.a.oobInline, pr.p.b.oobInline
		ch <- s
	})
	s := <-ch
	return s.a, s.b, s.knownA, s.knownB
}

// TestUrgentInlineIsLazy: a quiet pair makes no call for urgent data (the
// common path of short connections): its sockets stay as they were until
// urgent data comes (EPOLLPRI) or a direction turns bulk.
func TestUrgentInlineIsLazy(t *testing.T) {
	g := newGroup(t, Config{Loops: 1})
	c1, a := socketPair(t, "tcp")
	b, c2 := socketPair(t, "tcp")
	t.Cleanup(func() { c1.Close(); c2.Close() })
	ea, eb, err := TakePair(a, b)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan core.Result, 1)
	pr, err := g.AddWithPrefix(ea, eb, nil, nil, core.Options{}, func(r core.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c1, "ping"); err != nil {
		t.Fatal(err)
	}
	urgenttest.ReadExactly(t, c2, []byte("ping"))
	if _, err := io.WriteString(c2, "pong"); err != nil {
		t.Fatal(err)
	}
	urgenttest.ReadExactly(t, c1, []byte("pong"))
	if ia, ib, ka, kb := oobInline(t, pr); ia != 0 || ib != 0 || ka || kb {
		t.Fatalf("after a quiet exchange: SO_OOBINLINE %d, %d (known %v, %v); want both untouched", ia, ib, ka, kb)
	}
	urgenttest.Send(t, c2, []byte("hello"), 'X', []byte("world"), false)
	urgenttest.ReadExactly(t, c1, []byte("helloXworld"))
	if ia, ib, _, kb := oobInline(t, pr); ia != 0 || ib != 1 || !kb {
		t.Fatalf("after urgent data from B: SO_OOBINLINE %d, %d (B known %v); want 0, 1 (true)", ia, ib, kb)
	}
	bulk := bytes.Repeat([]byte("z"), 64<<10)
	if _, err := c1.Write(bulk); err != nil {
		t.Fatal(err)
	}
	urgenttest.ReadExactly(t, c2, bulk)
	if ia, _, ka, _ := oobInline(t, pr); ia != 1 || !ka {
		t.Fatalf("after a bulk read from A: SO_OOBINLINE %d (known %v); want 1 (true)", ia, ka)
	}
	c1.Close()
	c2.Close()
	<-res
}

// TestListenerInlineInherited: a plain TCP listener the loops accept on is
// made inline once, and the sockets it accepts are inline from the start.
func TestListenerInlineInherited(t *testing.T) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	tl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, Config{Loops: 1})
	got := make(chan int, 1)
	ln, err := g.Listen(tl, Acceptor{Accept: func(a Accepted) *core.Setup {
		v, err := unix.GetsockoptInt(a.FD, unix.SOL_SOCKET, unix.SO_OOBINLINE)
		if err != nil {
			v = -1
		}
		got <- v
		unix.Close(a.FD)
		return nil
	}})
	if err != nil {
		tl.Close()
		t.Fatal(err)
	}
	defer ln.Close()
	if !ln.oobInline {
		t.Fatal("listener not made inline")
	}
	c, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := <-got; v != 1 {
		t.Fatalf("accepted socket: SO_OOBINLINE %d; want 1", v)
	}
}

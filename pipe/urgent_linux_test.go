package pipe

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/urgenttest"
)

// Urgent data (TCP MSG_OOB, as telnet and FTP's ABOR send it) must reach
// the other side in band, in its place in the stream, and must not stall
// the pipe: "hello" + urgent "X" + "world" arrives as "helloXworld".

// urgentCase is what a peer sends: before, the urgent byte, after; eof
// half-closes right after it (the urgent byte is the last one).
type urgentCase struct {
	name          string
	before, after string
	eof           bool
}

var urgentCases = []urgentCase{
	{name: "middle", before: "hello", after: "world"},
	{name: "first", after: "world"},
	{name: "last-before-eof", before: "hello", eof: true},
}

func (c urgentCase) want(prefix []byte) []byte {
	return append(append(append([]byte(nil), prefix...), c.before+"X"...), c.after...)
}

// TestUrgentDataInBand: for every flavour, both directions, TCP and Unix
// sources, the urgent byte in the middle, first, or last before EOF, in a
// quiet pipe or after bulk bytes (the splicing path), queued before the
// pipe starts or sent while it runs: the other side gets every byte in
// order, the bytes after the mark flow on, the other direction too, and
// the pipe ends cleanly.
func TestUrgentDataInBand(t *testing.T) {
	pairs := []struct {
		name   string
		ka, kb kind
		aToB   bool // the urgent data goes A→B, else B→A
	}{
		{"tcp-tcp-a-to-b", kTCP, kTCP, true},
		{"tcp-tcp-b-to-a", kTCP, kTCP, false},
		{"unix-tcp-a-to-b", kUnix, kTCP, true},
		{"tcp-unix-a-to-b", kTCP, kUnix, true},
	}
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 3<<10) // 48 KiB: fills the relay buffers of both flavours
	for _, pc := range pairs {
		for _, uc := range urgentCases {
			for _, prefix := range [][]byte{nil, bulk} {
				for _, queued := range []bool{true, false} {
					name := pc.name + "/" + uc.name
					if prefix != nil {
						name += "/after-bulk"
					}
					if queued {
						name += "/queued"
					}
					t.Run(name, func(t *testing.T) {
						forFlavours(t, func(t *testing.T, fl flavour) {
							aIn, aPeer := side(t, pc.ka)
							bIn, bPeer := side(t, pc.kb)
							sender, receiver := aPeer, bPeer
							if !pc.aToB {
								sender, receiver = bPeer, aPeer
							}
							urgentThroughPipe(t, fl, aIn, bIn, sender, receiver, pc.aToB, prefix, uc, queued)
						})
					})
				}
			}
		}
	}
}

// urgentThroughPipe runs one urgent case through a pipe between aIn and
// bIn; sender and receiver are the peers of the two sides.
func urgentThroughPipe(t *testing.T, fl flavour, aIn, bIn, sender, receiver net.Conn, aToB bool, prefix []byte, uc urgentCase, queued bool) {
	t.Helper()
	if queued {
		urgenttest.Send(t, sender, append(prefix, uc.before...), 'X', []byte(uc.after), uc.eof)
		urgenttest.WaitDelivered(t, sender)
	}
	res := make(chan Result, 1)
	fl.enter(t, aIn, bIn, nil, func(r Result) { res <- r })
	if !queued {
		urgenttest.Send(t, sender, append(prefix, uc.before...), 'X', []byte(uc.after), uc.eof)
	}
	sent := urgenttest.Exchange(t, sender, receiver, uc.want(prefix), uc.eof)
	r := waitResult(t, res)
	got := r.BytesAToB
	back := r.BytesBToA
	if !aToB {
		got, back = back, got
	}
	if r.Reason != ReasonEOF || r.Err != nil || got != int64(sent) || back != 2 {
		t.Fatalf("result %s (%v), %d bytes urgent way, %d back; want eof, %d and 2", r.Reason, r.Err, got, back, sent)
	}
}

func waitResult(t testing.TB, res <-chan Result) Result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(urgenttest.FailAfter):
		t.Fatal("the pipe did not end")
		return Result{}
	}
}

// urgentTLSConn is the transport of a TLS client that sends one byte of its
// next write (a whole record) as urgent data: at index at, or the last
// byte when at < 0.
type urgentTLSConn struct {
	*net.TCPConn
	armed atomic.Bool
	at    int
}

func (c *urgentTLSConn) Write(b []byte) (int, error) {
	if !c.armed.CompareAndSwap(true, false) || len(b) == 0 {
		return c.TCPConn.Write(b)
	}
	i := c.at
	if i < 0 || i >= len(b) {
		i = len(b) - 1
	}
	n, err := c.TCPConn.Write(b[:i])
	if err != nil {
		return n, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return n, err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b[i:i+1], unix.MSG_OOB, nil)
		return serr != unix.EAGAIN
	}); err != nil {
		return n, err
	}
	if serr != nil {
		return n, serr
	}
	m, err := c.TCPConn.Write(b[i+1:])
	return n + 1 + m, err
}

// urgentTLSSide is side(t, kTLS) whose peer (the TLS client) can send a
// record with an urgent byte in it.
func urgentTLSSide(t *testing.T) (inner net.Conn, peer *tls.Conn, raw *urgentTLSConn) {
	t.Helper()
	in, p := socketPair(t, "tcp")
	raw = &urgentTLSConn{TCPConn: p.(*net.TCPConn)}
	srv := tls.Server(in, serverTLS(t))
	cli := tls.Client(raw, clientTLS(t))
	errc := make(chan error, 1)
	go handshake(srv, errc)
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli, raw
}

// TestUrgentDataInTLS: an urgent byte inside the TLS stream (a client that
// sends part of a record, or of its close_notify, with MSG_OOB) is a byte
// of the record like any other: the record opens, the plaintext flows on
// and a close_notify with an urgent byte is a clean end. Urgent data from
// a plain side reaches a TLS side in its place in the plaintext.
func TestUrgentDataInTLS(t *testing.T) {
	for _, c := range []struct {
		name string
		at   int
	}{{"first-byte-of-record", 0}, {"inside-record", 9}, {"last-byte-of-record", -1}} {
		for _, queued := range []bool{true, false} {
			name := "tls-to-tcp/" + c.name
			if queued {
				name += "/queued"
			}
			t.Run(name, func(t *testing.T) {
				forFlavours(t, func(t *testing.T, fl flavour) {
					aIn, aPeer, raw := urgentTLSSide(t)
					bIn, bPeer := side(t, kTCP)
					send := func() {
						raw.at = c.at
						raw.armed.Store(true)
						if _, err := io.WriteString(aPeer, "helloXworld"); err != nil {
							t.Fatal(err)
						}
					}
					if queued {
						send()
						urgenttest.WaitDelivered(t, raw.TCPConn)
					}
					res := make(chan Result, 1)
					fl.enter(t, aIn, bIn, nil, func(r Result) { res <- r })
					if !queued {
						send()
					}
					urgenttest.ReadExactly(t, bPeer, []byte("helloXworld"))
					if _, err := io.WriteString(aPeer, "more"); err != nil {
						t.Fatal(err)
					}
					urgenttest.ReadExactly(t, bPeer, []byte("more"))
					// The urgent byte as the very last one: in close_notify.
					raw.at = -1
					raw.armed.Store(true)
					if err := aPeer.CloseWrite(); err != nil {
						t.Fatal(err)
					}
					closeWrite(t, raw.TCPConn)
					urgenttest.ReadEOF(t, bPeer)
					if _, err := io.WriteString(bPeer, "ok"); err != nil {
						t.Fatal(err)
					}
					urgenttest.ReadExactly(t, aPeer, []byte("ok"))
					closeWrite(t, bPeer)
					urgenttest.ReadEOF(t, aPeer)
					r := waitResult(t, res)
					if r.Reason != ReasonEOF || r.Err != nil || r.BytesAToB != 15 || r.BytesBToA != 2 {
						t.Fatalf("result %s (%v), %d bytes A→B, %d B→A; want eof, 15 and 2", r.Reason, r.Err, r.BytesAToB, r.BytesBToA)
					}
				})
			})
		}
	}
	for _, uc := range urgentCases {
		for _, queued := range []bool{true, false} {
			name := "tcp-to-tls/" + uc.name
			if queued {
				name += "/queued"
			}
			t.Run(name, func(t *testing.T) {
				forFlavours(t, func(t *testing.T, fl flavour) {
					aIn, aPeer := side(t, kTLS)
					bIn, bPeer := side(t, kTCP)
					urgentThroughPipe(t, fl, aIn, bIn, bPeer, aPeer, false, nil, uc, queued)
				})
			})
		}
	}
}

// TestUrgentDataListen: Engine.Listen's pairs (accepted by the loops, their
// upstream connected by the loops) carry urgent data both ways, from a
// listener that takes SO_OOBINLINE (its accepted sockets inherit it) and
// from Go's default MPTCP listener (which refuses it).
func TestUrgentDataListen(t *testing.T) {
	for _, mptcp := range []bool{false, true} {
		for _, uc := range urgentCases {
			for _, aToB := range []bool{true, false} {
				name := "tcp/"
				if mptcp {
					name = "mptcp-listener/"
				}
				name += uc.name
				if aToB {
					name += "/client-to-upstream"
				} else {
					name += "/upstream-to-client"
				}
				t.Run(name, func(t *testing.T) {
					up, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					defer up.Close()
					var lc net.ListenConfig
					lc.SetMultipathTCP(mptcp)
					tl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					e := &Engine{}
					t.Cleanup(func() { shutdownNow(e) })
					res := make(chan Result, 1)
					upAddr := netip.MustParseAddrPort(up.Addr().String())
					ln, err := e.Listen(tl, Acceptor{Accept: func(*Accepted) *Setup {
						return &Setup{Next: addresses(new([]error), upAddr), AfterClose: func(r Result) { res <- r }}
					}})
					if err != nil {
						tl.Close()
						t.Fatal(err)
					}
					client, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					defer client.Close()
					backend, err := up.Accept()
					if err != nil {
						t.Fatal(err)
					}
					defer backend.Close()
					sender, receiver := client, backend
					if !aToB {
						sender, receiver = backend, client
					}
					urgenttest.Send(t, sender, []byte(uc.before), 'X', []byte(uc.after), uc.eof)
					sent := urgenttest.Exchange(t, sender, receiver, uc.want(nil), uc.eof)
					r := waitResult(t, res)
					got, back := r.BytesAToB, r.BytesBToA
					if !aToB {
						got, back = back, got
					}
					if r.Reason != ReasonEOF || r.Err != nil || got != int64(sent) || back != 2 {
						t.Fatalf("result %s (%v), %d bytes urgent way, %d back; want eof, %d and 2", r.Reason, r.Err, got, back, sent)
					}
				})
			}
		}
	}
}

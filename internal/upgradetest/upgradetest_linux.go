package upgradetest

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/upgrade"
)

// Channel returns an upgrade channel's two ends: the old process's (the
// one that accepted) and the new one's; both close when tb ends.
func Channel(tb testing.TB) (oldc, newc *upgrade.Conn) {
	tb.Helper()
	srv, err := upgrade.Listen(filepath.Join(tb.TempDir(), "run", "upgrade.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	accepted := make(chan *upgrade.Conn, 1)
	go acceptOne(ctx, srv, accepted)
	newc, err = upgrade.Dial(ctx, srv.Path())
	oldc = <-accepted
	if err != nil || oldc == nil {
		if newc != nil {
			newc.Close()
		}
		if oldc != nil {
			oldc.Close()
		}
		tb.Fatalf("upgrade channel: %v", err)
	}
	tb.Cleanup(func() { oldc.Close(); newc.Close() })
	return oldc, newc
}

// acceptOne accepts one channel on srv (nil on error).
func acceptOne(ctx context.Context, srv *upgrade.Server, accepted chan<- *upgrade.Conn) {
	c, _ := srv.Accept(ctx)
	accepted <- c
}

// DetachedState is the State of a plain TCP pipe detached from an
// Engine with bytes in flight, as a hand-over record carries it.
func DetachedState(tb testing.TB) []byte {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	var conns [4]net.Conn // a, its peer, b, its peer
	for i := 0; i < len(conns); i += 2 {
		if conns[i+1], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			tb.Fatal(err)
		}
		defer conns[i+1].Close()
		if conns[i], err = ln.Accept(); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	e := &pipe.Engine{}
	defer e.Shutdown(ctx)
	h, err := e.Start(conns[0], conns[2], nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conns[1].Write([]byte("in flight")); err != nil {
		tb.Fatal(err)
	}
	if _, err := conns[3].Read(make([]byte, 9)); err != nil {
		tb.Fatal(err)
	}
	d, err := h.Detach(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Wipe()
	return bytes.Clone(d.State)
}

// SendSockets sends a message of kind with n sockets attached (one end
// of a socketpair each) and returns the other ends, which close when tb
// ends (closing one before is fine).
func SendSockets(tb testing.TB, ctx context.Context, c *upgrade.Conn, kind string, meta []byte, n int) (kept []*os.File) {
	tb.Helper()
	files := make([]*os.File, 0, n)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	tb.Cleanup(func() {
		for _, f := range kept {
			f.Close() // an *os.File closes its descriptor once
		}
	})
	for range n {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, os.NewFile(uintptr(fds[0]), "socketpair"))
		kept = append(kept, os.NewFile(uintptr(fds[1]), "socketpair peer"))
	}
	if err := c.Send(ctx, kind, meta, files...); err != nil {
		tb.Fatal(err)
	}
	return kept
}

// OpenFDs is the number of this process's open descriptors.
func OpenFDs(tb testing.TB) int {
	tb.Helper()
	n, err := procfs.OpenFDs(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Confirmations reads the n confirmations that the new process's
// RecvEach sends on c (one per message it took, the end included), as
// an old process's upgrade.Outbox would; any other message fails tb.
func Confirmations(tb testing.TB, ctx context.Context, c *upgrade.Conn, n int) {
	tb.Helper()
	for i := range n {
		kind, _, files, err := c.Recv(ctx)
		upgrade.CloseFiles(files)
		if err != nil || kind != "upgrade.taken" {
			tb.Fatalf("confirmation %d of %d: %q, %v", i+1, n, kind, err)
		}
	}
}

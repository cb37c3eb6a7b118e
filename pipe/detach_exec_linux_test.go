package pipe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
	"github.com/pipegate/pipegate/upgrade"
)

// adoptChildEnv names the hand-over socket for the child process of
// TestDetachAcrossProcesses.
const adoptChildEnv = "PIPE_TEST_ADOPT_CHILD"

// childResult is the Result the child reports back.
type childResult struct {
	AToB, BToA int64
	Start      int64 // Unix ns
	Reason     Reason
	Err        string
}

// TestDetachAcrossProcesses: a TLS-to-TCP pipe with a checksummed stream
// running both ways is detached mid-transfer and sent over upgrade.Conn
// (SCM_RIGHTS) to a child process (this test binary again), which adopts
// it; the stream completes intact through the child, whose afterClose
// reports the totals of both processes.
func TestDetachAcrossProcesses(t *testing.T) {
	if path := os.Getenv(adoptChildEnv); path != "" {
		adoptChild(t, path)
		return
	}
	if !tlsrec.Supported {
		t.Skip("TLS pairs do not go to the loops with this Go release")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "run", "upgrade.sock") // made 0700
	srv, err := upgrade.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDetachAcrossProcesses$", "-test.v")
	cmd.Env = append(os.Environ(), adoptChildEnv+"="+path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, out.String())
		}
	}()
	c, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const n = 2 << 20
	e := &Engine{}
	defer shutdownNow(e)
	a, aPeer := smallSide(t, kTLS)
	b, bPeer := smallSide(t, kTCP)
	h, err := e.Start(a, b, func(r Result) { t.Errorf("afterClose in the old process: %+v", r) })
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 4)
	gAB, gBA := newGate(n/3), newGate(n/3)
	go sendChecked(aPeer, 1, n, errc)
	go sendChecked(bPeer, 2, n, errc)
	go checkChecked(bPeer, 1, n, gAB, errc)
	go checkChecked(aPeer, 2, n, gBA, errc)
	if !gAB.waitAt() || !gBA.waitAt() {
		t.Fatal(<-errc)
	}
	start := time.Now()
	d, err := h.Detach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, "pipe", d.State, d.A, d.B); err != nil {
		t.Fatal(err)
	}
	d.Wipe()
	gAB.raise(2 * n)
	gBA.raise(2 * n)
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	kind, meta, files, err := c.Recv(ctx)
	for _, f := range files {
		f.Close()
	}
	if err != nil || kind != "result" {
		t.Fatalf("child's answer: %q, %v", kind, err)
	}
	var r childResult
	if err := json.Unmarshal(meta, &r); err != nil {
		t.Fatal(err)
	}
	if r.AToB != n || r.BToA != n || r.Reason != ReasonEOF || r.Err != "" || time.Unix(0, r.Start).After(start) {
		t.Fatalf("child's result %+v", r)
	}
	if s := e.Stats(); s.Open != 0 {
		t.Fatalf("old engine still counts %d pipes", s.Open)
	}
}

// adoptChild is the new process: it adopts the pipe it is sent, and
// reports its Result once the pipe ends.
func adoptChild(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	c, err := upgrade.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kind, meta, files, err := c.Recv(ctx)
	if err != nil || kind != "pipe" || len(files) != 2 {
		t.Fatalf("receiving the pipe: %q, %d files, %v", kind, len(files), err)
	}
	e := &Engine{}
	defer shutdownNow(e)
	res := make(chan Result, 1)
	if _, err := e.Adopt(&Detached{A: files[0], B: files[1], State: meta}, func(r Result) { res <- r }); err != nil {
		t.Fatal(err)
	}
	var r Result
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatal("adopted pipe did not end")
	}
	cr := childResult{AToB: r.BytesAToB, BToA: r.BytesBToA, Start: r.Start.UnixNano(), Reason: r.Reason}
	if r.Err != nil {
		cr.Err = r.Err.Error()
	}
	b, _ := json.Marshal(cr)
	if err := c.Send(ctx, "result", b); err != nil {
		t.Fatal(err)
	}
}

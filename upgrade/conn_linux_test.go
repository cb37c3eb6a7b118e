package upgrade

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/procfs"
)

// testCtx bounds a test's waits (a hang fails instead of blocking CI).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connPair returns the old side's and the new side's Conn over a fresh
// upgrade socket.
func connPair(t *testing.T) (oldc, newc *Conn) {
	t.Helper()
	ctx := testCtx(t)
	srv, err := Listen(filepath.Join(t.TempDir(), "run", "upgrade.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type accepted struct {
		c   *Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := srv.Accept(ctx)
		ch <- accepted{c, err}
	}()
	newc, err = Dial(ctx, srv.Path())
	a := <-ch
	if err != nil || a.err != nil {
		t.Fatalf("dial: %v; accept: %v", err, a.err)
	}
	t.Cleanup(func() { a.c.Close(); newc.Close() })
	return a.c, newc
}

// rawPair returns a Conn and the raw descriptor of its peer, to send
// frames this package would never send.
func rawPair(t *testing.T) (*Conn, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "socketpair")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newConn(nc.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); unix.Close(fds[1]) })
	return c, fds[1]
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	n, err := procfs.OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendRecvFiles(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := oldc.Send(ctx, "pipe", []byte(`{"id":7}`), w); err != nil {
		t.Fatal(err)
	}
	kind, meta, files, err := newc.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(files)
	if kind != "pipe" || string(meta) != `{"id":7}` || len(files) != 1 {
		t.Fatalf("got kind %q meta %q %d files", kind, meta, len(files))
	}
	flags, err := unix.FcntlInt(files[0].Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("received descriptor flags %#x (%v): want close-on-exec", flags, err)
	}
	if _, err := files[0].Write([]byte("through")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "through" {
		t.Fatalf("read %q, %v through the received pipe end", buf, err)
	}

	// The other way, without files, and a message as large as allowed
	// (more than a socket buffer: sent while the peer reads).
	big := bytes.Repeat([]byte("m"), MaxMeta)
	errc := make(chan error, 1)
	go func() { errc <- newc.Send(ctx, "big", big) }()
	kind, meta, files, err = oldc.Recv(ctx)
	if err != nil || kind != "big" || !bytes.Equal(meta, big) || len(files) != 0 {
		t.Fatalf("big message: kind %q, %d bytes, %d files, %v", kind, len(meta), len(files), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestListenerHandOverTCP(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name := "listen[0] " + ln.Addr().String()
	if err := SendListeners(ctx, oldc, []net.Listener{ln}, []string{name}); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	got, err := RecvListeners(ctx, newc)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	nl := got[name]
	if len(got) != 1 || nl == nil {
		t.Fatalf("received %v, want %q", got, name)
	}
	defer nl.Close()
	// Until the new process is ready the old one serves on as before (a
	// rollback needs nothing else).
	oc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	oc.Close()
	sc0, err := ln.Accept()
	if err != nil {
		t.Fatalf("old listener after the hand-over: %v", err)
	}
	sc0.Close()
	// The old process stops accepting; the socket lives on in the new one.
	ln.Close()
	cc, err := net.Dial("tcp", nl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := nl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := cc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v on the accepted conn", buf, err)
	}
}

func TestListenerHandOverUnixKeepsPath(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := SendListeners(ctx, oldc, []net.Listener{ln}, []string{"app"}); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	got, err := RecvListeners(ctx, newc)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer got["app"].Close()
	ln.Close() // must not remove the path the new process serves on
	cc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial after the old listener closed: %v", err)
	}
	defer cc.Close()
	sc, err := got["app"].Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
}

func TestSendListenersRefuses(t *testing.T) {
	oldc, _ := connPair(t)
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name  string
		ls    []net.Listener
		names []string
		want  string
	}{
		{"count", []net.Listener{ln}, nil, "1 listeners and 0 names"},
		{"dup", []net.Listener{ln, ln}, []string{"a", "a"}, "given twice"},
		{"type", []net.Listener{struct{ net.Listener }{ln}}, []string{"a"}, "only TCP and Unix"},
	} {
		err := SendListeners(ctx, oldc, tc.ls, tc.names)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestListenModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "pipegate")
	srv, err := Listen(filepath.Join(dir, "upgrade.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	si, err := os.Lstat(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 || si.Mode().Perm() != 0o600 || si.Mode().Type() != os.ModeSocket {
		t.Fatalf("dir mode %v, socket mode %v: want 0700 and a 0600 socket", di.Mode(), si.Mode())
	}
	// A second Listen finds the first one alive.
	if _, err := Listen(srv.Path()); err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Fatalf("second Listen: %v", err)
	}
}

func TestListenRefusesOpenDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(dir, "upgrade.sock"))
	if err == nil || !strings.Contains(err.Error(), "mode 0755") {
		t.Fatalf("got %v, want a refusal naming mode 0755", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "upgrade.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // as a crash would leave it
	ln.Close()
	srv, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a regular file: %v", err)
	}
}

func TestAcceptCancelThenAccept(t *testing.T) {
	srv, err := Listen(filepath.Join(t.TempDir(), "run", "upgrade.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := srv.Accept(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept with a cancelled context: %v", err)
	}
	// The Server is still usable: the deadline was reset.
	ctx = testCtx(t)
	done := make(chan error, 1)
	go func() {
		c, err := srv.Accept(ctx)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDialNoServer(t *testing.T) {
	_, err := Dial(testCtx(t), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("got %v", err)
	}
}

// TestPeerOtherUIDRefused runs the test binary as uid 65534 against a
// socket whose modes were loosened: SO_PEERCRED still keeps it out.
func TestPeerOtherUIDRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a helper as another uid")
	}
	const nobody = 65534
	ctx := testCtx(t)
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "helper.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(filepath.Join(top, "run", "upgrade.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// A misconfiguration the peer check must survive.
	if err := os.Chmod(filepath.Dir(srv.Path()), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(srv.Path(), 0o666); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, bin, "-test.run=^$")
	cmd.Dir = top
	cmd.Env = append(os.Environ(), helperDialEnv+"="+srv.Path())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, aerr := srv.Accept(ctx)
	if aerr == nil {
		c.Close()
	}
	werr := cmd.Wait()
	var pe *PeerError
	if !errors.As(aerr, &pe) || pe.UID != nobody || !strings.Contains(aerr.Error(), "uid 65534") {
		t.Fatalf("Accept: %v, want a PeerError naming uid %d", aerr, nobody)
	}
	if werr != nil || !strings.Contains(out.String(), "refused") {
		t.Fatalf("helper: %v, output %q: want a refused dial", werr, out.String())
	}
}

func TestSendBounds(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	many := make([]*os.File, MaxFiles+1)
	for i := range many {
		many[i] = w
	}
	before := openFDs(t)
	for _, tc := range []struct {
		name  string
		kind  string
		meta  []byte
		files []*os.File
		want  string
	}{
		{"files", "k", nil, many, "65 files exceed"},
		{"meta", "k", make([]byte, MaxMeta+1), nil, "exceeds the limit"},
		{"empty kind", "", nil, nil, "kind of 0 bytes"},
		{"long kind", strings.Repeat("k", MaxKind+1), nil, nil, "kind of 65 bytes"},
		{"kind space", "a b", nil, nil, "not printable"},
		{"nil file", "k", nil, []*os.File{nil}, "nil"},
	} {
		err := oldc.Send(ctx, tc.kind, tc.meta, tc.files...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors before, %d after refused sends", before, after)
	}
	// Nothing was sent: the channel is still in step.
	if err := oldc.Send(ctx, "ok", nil); err != nil {
		t.Fatal(err)
	}
	if kind, _, _, err := newc.Recv(ctx); err != nil || kind != "ok" {
		t.Fatalf("after refused sends: %q, %v", kind, err)
	}
}

func TestRecvRefusesBadFrames(t *testing.T) {
	frame := func(kind string, nfiles, metaLen int) []byte {
		b := appendFrame(nil, kind, nil, 0)
		b[6], b[7] = byte(nfiles>>8), byte(nfiles)
		b[8], b[9], b[10], b[11] = byte(metaLen>>24), byte(metaLen>>16), byte(metaLen>>8), byte(metaLen)
		return b
	}
	long := frame("k", 3, 0)
	long[4], long[5] = 0, MaxKind+1
	bad := frame("k", 3, 0)
	copy(bad, "HTTP")
	for _, tc := range []struct {
		name   string
		frame  []byte
		nfiles int // sent
		want   string
	}{
		{"too many files", frame("k", 1, 0), 100, "MSG_CTRUNC"},
		{"announced over limit", frame("k", MaxFiles+1, 0), 3, "over the limit"},
		{"oversized meta", frame("k", 3, MaxMeta+1), 3, "exceeds the limit"},
		{"long kind", long, 3, "received kind of 65 bytes"},
		{"bad magic", bad, 3, "bad frame magic"},
		{"fewer files", frame("k", 3, 0), 2, "announces 3 files and carries 2"},
		{"more files", frame("k", 1, 0), 2, "announces 1 files and carries 2"},
		{"kind not printable", frame("\x01", 3, 0), 3, "not printable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := rawPair(t)
			before := openFDs(t)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			fds := make([]int, tc.nfiles)
			for i := range fds {
				if fds[i], err = unix.Dup(int(w.Fd())); err != nil {
					t.Fatal(err)
				}
			}
			serr := unix.Sendmsg(peer, tc.frame, unix.UnixRights(fds...), nil, 0)
			closeFDs(fds)
			r.Close()
			w.Close()
			if serr != nil {
				t.Fatal(serr)
			}
			_, _, files, err := c.Recv(testCtx(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) || files != nil {
				t.Fatalf("got %d files, %v; want %q", len(files), err, tc.want)
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d descriptors before, %d after: received ones leaked", before, after)
			}
			if _, _, _, again := c.Recv(testCtx(t)); again != err {
				t.Fatalf("Recv after an error: %v, want the same error", again)
			}
		})
	}
}

func TestRecvEOF(t *testing.T) {
	c, peer := rawPair(t)
	unix.Shutdown(peer, unix.SHUT_WR)
	if _, _, _, err := c.Recv(testCtx(t)); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
	c2, peer2 := rawPair(t)
	if _, err := unix.Write(peer2, []byte("PGUP")); err != nil {
		t.Fatal(err)
	}
	unix.Shutdown(peer2, unix.SHUT_WR)
	if _, _, _, err := c2.Recv(testCtx(t)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

// fakeOld accepts one connection on a bare socket and greets it with
// kind and meta, as an old process of another version or mind might.
func fakeOld(ctx context.Context, ln *net.UnixListener, kind string, meta []byte, done chan<- error) {
	uc, err := ln.AcceptUnix()
	if err != nil {
		done <- err
		return
	}
	c, err := newConn(uc)
	if err != nil {
		uc.Close()
		done <- err
		return
	}
	defer c.Close()
	if err := c.Send(ctx, kind, meta); err != nil {
		done <- err
		return
	}
	_, _, _, err = c.Recv(ctx) // until the dialer hangs up
	if err == io.EOF {
		err = nil
	}
	done <- err
}

func TestDialRefusesGreeting(t *testing.T) {
	for _, tc := range []struct {
		kind, meta, want string
	}{
		{kindHello, `{"protocol":2}`, "want version 1"},
		{kindRefused, "busy", "refused us: busy"},
		{"upgrade.listeners", "{}", "before its hello"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			ctx := testCtx(t)
			path := filepath.Join(t.TempDir(), "fake.sock")
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go fakeOld(ctx, ln, tc.kind, []byte(tc.meta), done)
			c, err := Dial(ctx, path)
			if err == nil {
				c.Close()
			}
			if ferr := <-done; ferr != nil {
				t.Fatal(ferr)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Dial: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRecvListenersRefuses(t *testing.T) {
	for _, tc := range []struct {
		kind, meta, want string
	}{
		{"other", "{}", `got a "other" message`},
		{kindListeners, `{"names":["a"]}`, "1 listener names for 0 files"},
		{kindListeners, `[`, "listener names"},
	} {
		oldc, newc := connPair(t)
		ctx := testCtx(t)
		if err := oldc.Send(ctx, tc.kind, []byte(tc.meta)); err != nil {
			t.Fatal(err)
		}
		ls, err := RecvListeners(ctx, newc)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ls != nil {
			t.Errorf("%s %s: got %v, %v; want %q", tc.kind, tc.meta, ls, err, tc.want)
		}
	}
}

// TestSendZeroesFrame: the frame Send built (a copy of meta, which may
// hold a pipe's TLS secrets) is zeroed once sent, so that clearing meta
// leaves no copy of it in the sending process.
func TestSendZeroesFrame(t *testing.T) {
	oldc, newc := connPair(t)
	meta := bytes.Repeat([]byte("secret"), 100)
	if err := oldc.Send(testCtx(t), "test.secret", meta); err != nil {
		t.Fatal(err)
	}
	oldc.wmu.Lock()
	buf := oldc.wbuf[:cap(oldc.wbuf)]
	oldc.wmu.Unlock()
	if len(buf) < len(meta) || bytes.IndexFunc(buf, func(r rune) bool { return r != 0 }) >= 0 {
		t.Errorf("after Send the frame buffer (%d bytes) still holds data", len(buf))
	}
	kind, got, files, err := newc.Recv(testCtx(t))
	if err != nil || kind != "test.secret" || !bytes.Equal(got, meta) || len(files) != 0 {
		t.Errorf("Recv: %q %d bytes %d files %v", kind, len(got), len(files), err)
	}
}

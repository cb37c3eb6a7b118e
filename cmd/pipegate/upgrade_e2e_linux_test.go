package main

// End-to-end tests of binary upgrades (SIGUSR2, `pipegate upgrade`) with
// the built binary: every generation writes its JSON log to one pipe read
// here; the old process hands its sockets to a new one started from the
// same binary (or a --binary that fails).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// upChain is a daemon and the generations its upgrades start.
type upChain struct {
	cmd      *exec.Cmd // the first generation, our child
	exited   chan struct{}
	code     int
	logDone  chan struct{}
	mu       sync.Mutex
	recs     []map[string]any
	raw      []string
	change   chan struct{}
	pidsSeen []int
}

// upStart runs `bin args...` (with --log-format json for forward) and
// waits for its first want log records msg.
func upStart(t *testing.T, bin string, args []string, msg string, want int, env ...string) *upChain {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &upChain{exited: make(chan struct{}), logDone: make(chan struct{}), change: make(chan struct{})}
	if args[0] == "forward" {
		args = append(args, "--log-format", "json")
	}
	ch.cmd = exec.Command(bin, args...)
	ch.cmd.Stderr = w // inherited by every generation
	ch.cmd.Env = append(os.Environ(), env...)
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ch.pidsSeen = []int{ch.cmd.Process.Pid}
	go upReadLog(ch, r)
	go upWaitFirst(ch)
	t.Cleanup(func() {
		ch.mu.Lock()
		pids := ch.pidsSeen
		ch.mu.Unlock()
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-ch.exited
		select {
		case <-ch.logDone:
		case <-time.After(fwdWait):
			t.Error("log pipe still open: a generation survived SIGKILL")
		}
		if t.Failed() {
			ch.mu.Lock()
			t.Logf("pipegate log:\n%s", strings.Join(ch.raw, "\n"))
			ch.mu.Unlock()
		}
	})
	for i := 1; i <= want; i++ {
		ch.waitLog(t, msg, i)
	}
	ch.waitLog(t, "serving", 1) // SIGUSR2 is refused before
	return ch
}

func upReadLog(ch *upChain, r io.ReadCloser) {
	defer close(ch.logDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec map[string]any
		json.Unmarshal(sc.Bytes(), &rec)
		ch.mu.Lock()
		ch.raw = append(ch.raw, sc.Text())
		if rec != nil {
			ch.recs = append(ch.recs, rec)
			if rec["msg"] == "upgrade: new binary started" {
				ch.pidsSeen = append(ch.pidsSeen, int(rec["pid"].(float64)))
			}
		}
		close(ch.change)
		ch.change = make(chan struct{})
		ch.mu.Unlock()
	}
}

func upWaitFirst(ch *upChain) {
	ch.cmd.Wait()
	ch.code = ch.cmd.ProcessState.ExitCode()
	close(ch.exited)
}

// waitLog returns the n-th (from 1) log record with message msg.
func (ch *upChain) waitLog(t *testing.T, msg string, n int) map[string]any {
	t.Helper()
	return ch.waitFor(t, fmt.Sprintf("log #%d %q", n, msg), func(recs []map[string]any) map[string]any {
		seen := 0
		for _, r := range recs {
			if r["msg"] == msg {
				if seen++; seen == n {
					return r
				}
			}
		}
		return nil
	})
}

// waitFor returns the record find picks from the log records read so
// far, asking again each time the log grows.
func (ch *upChain) waitFor(t *testing.T, what string, find func([]map[string]any) map[string]any) map[string]any {
	t.Helper()
	deadline := time.After(fwdWait)
	for {
		ch.mu.Lock()
		r := find(ch.recs)
		if r != nil {
			ch.mu.Unlock()
			return r
		}
		change := ch.change
		ch.mu.Unlock()
		select {
		case <-change:
		case <-ch.logDone:
			t.Fatalf("every generation exited before %s", what)
		case <-deadline:
			t.Fatalf("no %s within %v", what, fwdWait)
		}
	}
}

// count is how many log records with message msg (and, if not empty,
// client) have been read so far.
func (ch *upChain) count(msg, client string) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := 0
	for _, r := range ch.recs {
		if r["msg"] == msg && (client == "" || r["client"] == client) {
			n++
		}
	}
	return n
}

// waitClosed waits for the "connection closed" line of the pair of
// client c and checks that it is the only one.
func (ch *upChain) waitClosed(t *testing.T, c net.Conn) map[string]any {
	t.Helper()
	client := c.LocalAddr().String()
	r := ch.waitFor(t, "log line for the pair of "+client, func(recs []map[string]any) map[string]any {
		for _, r := range recs {
			if r["msg"] == "connection closed" && r["client"] == client {
				return r
			}
		}
		return nil
	})
	if n := ch.count("connection closed", client); n != 1 {
		t.Errorf("%d log lines for the pair of %s, want 1", n, client)
	}
	return r
}

// firstCode waits for the first generation to exit.
func (ch *upChain) firstCode(t *testing.T) int {
	t.Helper()
	select {
	case <-ch.exited:
	case <-time.After(fwdWait):
		t.Fatal("the first generation did not exit")
	}
	return ch.code
}

// upgradeTo signals pid and returns the pid of the n-th new process
// reported serving.
func (ch *upChain) upgradeTo(t *testing.T, pid, n int) int {
	t.Helper()
	ch.waitLog(t, "serving", n) // the n-th generation, pid
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	return int(ch.waitLog(t, "upgrade: new process serves", n)["pid"].(float64))
}

// gone reports whether pid has exited (no process, or a zombie not reaped
// by its new parent).
func gone(pid int) bool { return !procfs.Running(pid) }

// eventually polls cond until it holds, within fwdWait (a process's exit
// that is not our child's, its open descriptors: no event to wait for).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(fwdWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", fwdWait, what)
		}
		<-tick.C
	}
}

// echoOnce dials addr, round-trips msg and closes.
func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, fwdWait)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fwdWait))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if string(b) != msg {
		return fmt.Errorf("echo %q, want %q", b, msg)
	}
	return nil
}

// hammer connects to addr again and again until stop, counting
// connections and failures (a refused or reset connection is one).
type hammer struct {
	do       func(worker, i int) error // one connection's work
	stop     chan struct{}
	done     chan struct{}
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []error
}

func startHammer(addr string, workers int) *hammer {
	return startHammerFunc(workers, func(worker, i int) error { return echoOnce(addr, fmt.Sprintf("w%d-%d", worker, i)) })
}

// startHammerFunc runs do on workers goroutines, over and over, until
// finish, counting what succeeds and what fails.
func startHammerFunc(workers int, do func(worker, i int) error) *hammer {
	h := &hammer{do: do, stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go hammerConnects(h, i, &wg)
	}
	go func() { wg.Wait(); close(h.done) }()
	return h
}

func hammerConnects(h *hammer, worker int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-h.stop:
			return
		default:
		}
		if err := h.do(worker, i); err != nil {
			h.fail.Add(1)
			h.mu.Lock()
			if len(h.errs) < 5 {
				h.errs = append(h.errs, err)
			}
			h.mu.Unlock()
			continue
		}
		h.ok.Add(1)
	}
}

// finish stops the hammer and fails t on any failed connection; at least
// min connections must have been made.
func (h *hammer) finish(t *testing.T, min int64) {
	t.Helper()
	close(h.stop)
	<-h.done
	if n := h.fail.Load(); n > 0 {
		t.Errorf("%d of %d connections failed during the upgrades: %v", n, n+h.ok.Load(), h.errs)
	}
	if h.ok.Load() < min {
		t.Errorf("only %d connections made", h.ok.Load())
	}
}

// longLived is a connection opened before an upgrade.
func longLived(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := fwdDial(t, addr)
	c.SetDeadline(time.Now().Add(fwdWait))
	echoOn(t, c, "hello")
	return c
}

func echoOn(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("echo on a long-lived connection: %q, %v", b, err)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	pid, err := readPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestUpgradeForward upgrades `pipegate forward` under load: the
// connections open before move to the new process and go on there (the
// old one exits 0 with them open), no new connection fails, the pid file
// names the new process, and each moved pair is logged once, by the new
// process.
func TestUpgradeForward(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "forward.pid")
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "127.0.0.1:0", "--to", up, "--pid-file", pidFile,
		"--upgrade-dir", filepath.Join(dir, "run"), "--metrics-addr", "127.0.0.1:0", "--drain-timeout", "1m"}, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	metrics := ch.waitLog(t, "metrics listening", 1)["addr"].(string)
	oldPID := ch.cmd.Process.Pid
	eventually(t, "pid file written", func() bool { p, err := readPIDFile(pidFile); return err == nil && p == oldPID })

	var long []net.Conn
	for range 3 {
		long = append(long, longLived(t, addr))
	}
	h := startHammer(addr, 4)
	eventually(t, "load before the upgrade", func() bool { return h.ok.Load() >= 20 })
	newPID := ch.upgradeTo(t, oldPID, 1)
	before := h.ok.Load()
	eventually(t, "load after the upgrade", func() bool { return h.ok.Load() >= before+50 })
	h.finish(t, 70)

	if newPID == oldPID || readPID(t, pidFile) != newPID {
		t.Fatalf("pid file %d, new process %d, old %d", readPID(t, pidFile), newPID, oldPID)
	}
	if got := ch.waitLog(t, "forward listening", 2)["addr"]; got != addr {
		t.Fatalf("new process listens on %v, want %s", got, addr)
	}
	if got := ch.waitLog(t, "metrics listening", 2)["addr"]; got != metrics {
		t.Fatalf("new metrics endpoint on %v, want %s", got, metrics)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + metrics + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz after the upgrade: %v %v", resp, err)
	}
	resp.Body.Close()

	// The pairs moved: the old process exits with them open, and they go
	// on in the new one.
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d, want 0", code)
	}
	rec := ch.waitLog(t, "upgrade: pairs handed over", 1)
	if rec["sent"].(float64) < float64(len(long)) || rec["stayed"] != 0.0 {
		t.Errorf("hand-over %v: want the %d long-lived pairs (and more) sent, none stayed", rec, len(long))
	}
	if got := ch.waitLog(t, "upgrade: pairs taken over", 1); got["adopted"] != rec["sent"] || got["closed"] != 0.0 {
		t.Errorf("taken over %v, handed over %v", got, rec)
	}
	for _, c := range long {
		echoOn(t, c, "still there")
	}
	for _, c := range long {
		c.Close()
		if line := ch.waitClosed(t, c); line["bytes_to_upstream"] != float64(len("hello")+len("still there")) {
			t.Errorf("log line of a moved pair: %v", line)
		}
	}
	if err := echoOnce(addr, "after"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new process exits on SIGTERM", func() bool { return gone(newPID) })
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after the last process stopped: %v", err)
	}
}

// TestUpgradeForwardRollback: a new process that cannot serve (bad
// config, a binary that crashes at start) changes nothing; the old one
// keeps serving, says why, and a later upgrade with the config fixed
// works (and re-reads it).
func TestUpgradeForwardRollback(t *testing.T) {
	fwdLeakCheck(t)
	up1 := fwdUpstream(t, nil, testserver.Greet("one"))
	up2 := fwdUpstream(t, nil, testserver.Greet("two"))
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "forward.pid")
	cfg := filepath.Join(dir, "forward.yaml")
	config := func(text string) {
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config("forwards:\n  - listen: 127.0.0.1:0\n    to: [" + up1 + "]\n")
	crash := filepath.Join(dir, "crash.sh")
	if err := os.WriteFile(crash, []byte("#!/bin/sh\necho crashing at start >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "pipegate") // replaced as a package upgrade does
	install := func(from string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(bin), 0o755)
		}
		if err == nil {
			err = os.WriteFile(bin+".new", b, 0o755)
		}
		if err == nil {
			err = os.Rename(bin+".new", bin)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	install(fwdBin)
	args := []string{"forward", "--config", cfg, "--pid-file", pidFile, "--upgrade-dir", filepath.Join(dir, "run")}
	ch := upStart(t, bin, args, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	oldPID := ch.cmd.Process.Pid
	eventually(t, "pid file written", func() bool { p, err := readPIDFile(pidFile); return err == nil && p == oldPID })
	greet := func(want string) {
		t.Helper()
		c := fwdDial(t, addr)
		if got := fwdRoundTrip(t, c, ""); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	greet("one")
	const idleSockets = 2 // the listener, and its duplicate kept for upgrades
	eventually(t, "idle", func() bool { return sockets(t, oldPID) == idleSockets })

	// Bad config: `pipegate upgrade` reports the new process's reason.
	config("forwards:\n  - listen: 127.0.0.1:0\n    to: [" + up1 + "]\n    max_conns: -1\n")
	out, err := exec.Command(fwdBin, "upgrade", "--pid-file", pidFile, "--timeout", fwdWait.String()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "rolled back") || !strings.Contains(string(out), "max_conns") {
		t.Fatalf("pipegate upgrade with a bad config: %v\n%s", err, out)
	}
	rec := ch.waitLog(t, "upgrade failed; rolled back, this process keeps serving", 1)
	if !strings.Contains(rec["err"].(string), cfg) {
		t.Errorf("rollback reason %q does not name the config file", rec["err"])
	}
	greet("one")

	// The config fixed, but the new binary crashes at start.
	config("forwards:\n  - listen: 127.0.0.1:0\n    to: [" + up2 + "]\n")
	install(crash)
	if err := syscall.Kill(oldPID, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	rec = ch.waitLog(t, "upgrade failed; rolled back, this process keeps serving", 2)
	if !strings.Contains(rec["err"].(string), "exit status 3") {
		t.Errorf("rollback reason %q does not say that the new process exited", rec["err"])
	}
	greet("one")
	if readPID(t, pidFile) != oldPID {
		t.Fatal("pid file changed by a failed upgrade")
	}
	eventually(t, "no socket left open by the failed upgrades", func() bool { return sockets(t, oldPID) == idleSockets })

	// A good binary: the upgrade goes through and re-reads the config.
	install(fwdBin)
	out, err = exec.Command(fwdBin, "upgrade", "--pid-file", pidFile, "--timeout", fwdWait.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("pipegate upgrade: %v\n%s", err, out)
	}
	newPID := readPID(t, pidFile)
	if !strings.Contains(string(out), strconv.Itoa(newPID)) || newPID == oldPID {
		t.Fatalf("pipegate upgrade said %q; pid file %d, old pid %d", out, newPID, oldPID)
	}
	greet("two")
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d, want 0", code)
	}
}

// TestUpgradeForwardBinaryFlag: --binary names the new binary; one that
// fails at once (/bin/false) is rolled back.
func TestUpgradeForwardBinaryFlag(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "127.0.0.1:0", "--to", up, "--binary", "/bin/false",
		"--upgrade-dir", filepath.Join(dir, "run")}, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	if err := syscall.Kill(ch.cmd.Process.Pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	rec := ch.waitLog(t, "upgrade failed; rolled back, this process keeps serving", 1)
	if !strings.Contains(rec["err"].(string), "exit status 1") {
		t.Errorf("rollback reason %q", rec["err"])
	}
	if err := echoOnce(addr, "still serving"); err != nil {
		t.Fatal(err)
	}
}

// sockets counts the sockets pid has open.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	fds, err := procfs.FDTargets(pid)
	if err != nil {
		t.Fatalf("open descriptors of %d: %v", pid, err)
	}
	n := 0
	for _, l := range fds {
		if strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// fakeSystemd receives sd_notify datagrams on a socket for NOTIFY_SOCKET.
type fakeSystemd struct {
	path string
	c    *net.UnixConn
	msgs chan string
}

func startFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	sd := &fakeSystemd{path: path, c: c, msgs: make(chan string, 100)}
	done := make(chan struct{})
	go readNotifications(sd, done)
	t.Cleanup(func() { c.Close(); <-done })
	return sd
}

func readNotifications(sd *fakeSystemd, done chan<- struct{}) {
	defer close(done)
	b := make([]byte, 4096)
	for {
		n, err := sd.c.Read(b)
		if err != nil {
			return
		}
		select {
		case sd.msgs <- string(b[:n]):
		default: // the test reads what it expects; no one blocks systemd
		}
	}
}

// expect waits for a notification with every line of want.
func (sd *fakeSystemd) expect(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(fwdWait)
	for {
		select {
		case m := <-sd.msgs:
			lines := strings.Split(m, "\n")
			all := true
			for _, w := range want {
				all = all && slices.Contains(lines, w)
			}
			if all {
				return
			}
		case <-deadline:
			t.Fatalf("no notification with %q within %v", want, fwdWait)
		}
	}
}

// goroutines is go_goroutines of the metrics endpoint at addr.
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: fwdWait}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// TestUpgradeForwardRepeat: ten upgrades in a row under load refuse no
// connection, move long-lived pairs ten times (each logged once, at its
// end), tell systemd each new main pid, and leave the survivor with
// no more sockets or goroutines than the first new process had; with the
// event loops accepting, and with Go accepting (as for TLS, SNI and PROXY
// forwards), where a connection accepted at the hand-over is still being
// set up.
func TestUpgradeForwardRepeat(t *testing.T) {
	t.Run("loops", func(t *testing.T) { testUpgradeForwardRepeat(t) })
	t.Run("go-accept", func(t *testing.T) { testUpgradeForwardRepeat(t, "--go-accept") })
}

func testUpgradeForwardRepeat(t *testing.T, flags ...string) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	sd := startFakeSystemd(t)
	ch := upStart(t, fwdBin, append([]string{"forward", "--listen", "127.0.0.1:0", "--to", up, "--metrics-addr", "127.0.0.1:0",
		"--upgrade-dir", filepath.Join(dir, "run"), "--drain-timeout", "10s"}, flags...), "forward listening", 1, "NOTIFY_SOCKET="+sd.path)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	metrics := ch.waitLog(t, "metrics listening", 1)["addr"].(string)
	sd.expect(t, "READY=1")

	// First generation after an upgrade, idle: the baseline.
	old := ch.cmd.Process.Pid
	pid := ch.upgradeTo(t, old, 1)
	sd.expect(t, "MAINPID="+strconv.Itoa(pid), "READY=1")
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("first process exit code %d", code)
	}
	if err := echoOnce(addr, "warm up"); err != nil {
		t.Fatal(err)
	}
	// Idle: the forward's listener and the metrics endpoint's, each with
	// the duplicate kept for the next upgrade.
	const idleSockets = 4
	eventually(t, "the first new process idle", func() bool { return sockets(t, pid) == idleSockets })
	baseG := goroutines(t, metrics)

	// Long-lived pairs move with each upgrade.
	var long []net.Conn
	for range 3 {
		c := longLived(t, addr)
		c.SetDeadline(time.Now().Add(4 * fwdWait))
		long = append(long, c)
	}
	h := startHammer(addr, 2)
	const rounds = 10
	for i := 2; i <= rounds; i++ {
		before := h.ok.Load()
		eventually(t, "load before the upgrade", func() bool { return h.ok.Load() >= before+10 })
		old, pid = pid, ch.upgradeTo(t, pid, i)
		sd.expect(t, "MAINPID="+strconv.Itoa(pid), "READY=1")
		eventually(t, fmt.Sprintf("old process %d exits after the hand-over", old), func() bool { return gone(old) })
		for _, c := range long {
			echoOn(t, c, fmt.Sprintf("round %d", i))
		}
	}
	h.finish(t, 10*rounds)
	for _, c := range long {
		c.Close()
		ch.waitClosed(t, c)
	}
	var s, g int
	eventually(t, "the survivor as idle as the first new process", func() bool {
		s, g = sockets(t, pid), goroutines(t, metrics)
		return s == idleSockets && g <= baseG
	})
	t.Logf("after %d upgrades: %d sockets, %d goroutines (first new process: %d, %d); %d connections", rounds, s, g, idleSockets, baseG, h.ok.Load())
}

// TestUpgradeMail upgrades `pipegate mail` with one IMAP listener: a
// session logged in before goes on in the old process, new sessions log
// in through the new one, and the old one exits once its session ends.
func TestUpgradeMail(t *testing.T) {
	fwdLeakCheck(t)
	d, dir, config := demoMailConfig(t, "drain_timeout: 1m\n")
	pidFile := filepath.Join(dir, "mail.pid")
	ch := upStart(t, fwdBin, []string{"mail", "--config", config, "--pid-file", pidFile, "--upgrade-dir", filepath.Join(dir, "run")}, "mail: listening", 1)
	addr := ch.waitLog(t, "mail: listening", 1)["addr"].(string)
	alice := d.Accounts[0]
	login := func() *imapclient.Client {
		t.Helper()
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(alice.User, alice.Password).Wait(); err != nil {
			t.Fatal(err)
		}
		if sel, err := c.Select("INBOX", nil).Wait(); err != nil || int(sel.NumMessages) != len(alice.Subjects) {
			t.Fatalf("select: %v, %+v", err, sel)
		}
		return c
	}
	before := login()
	defer before.Close()

	newPID := ch.upgradeTo(t, ch.cmd.Process.Pid, 1)
	if got := ch.waitLog(t, "mail: listening", 2)["addr"]; got != addr {
		t.Fatalf("new process listens on %v, want %s", got, addr)
	}
	after := login()
	after.Logout().Wait()
	after.Close()
	// The session opened before the upgrade moved to the new process: the
	// old one exits with it still open, and it goes on.
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d, want 0", code)
	}
	if err := before.Noop().Wait(); err != nil {
		t.Fatalf("session opened before the upgrade, after the old process exited: %v", err)
	}
	if sel, err := before.Select("INBOX", nil).Wait(); err != nil || int(sel.NumMessages) != len(alice.Subjects) {
		t.Fatalf("select after the hand-over: %v, %+v", err, sel)
	}
	before.Logout().Wait()
	// Its one log line comes from the new process.
	line := ch.waitLog(t, "imap session", 2)
	if line["account"] != alice.User {
		t.Errorf("session line %v", line)
	}
	if readPID(t, pidFile) != newPID {
		t.Fatalf("pid file %d, want the new process %d", readPID(t, pidFile), newPID)
	}
}

// TestUpgradeForwardUnix: a Unix socket listener is handed over too, and
// its path survives the old process's exit (the path is the new one's).
func TestUpgradeForwardUnix(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fwd.sock")
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "unix:" + sock, "--to", up,
		"--upgrade-dir", filepath.Join(dir, "run")}, "forward listening", 1)
	dial := func() {
		t.Helper()
		c, err := net.DialTimeout("unix", sock, fwdWait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(fwdWait))
		echoOn(t, c, "over unix")
	}
	dial()
	ch.upgradeTo(t, ch.cmd.Process.Pid, 1)
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d", code)
	}
	dial()
}

// TestUpgradeForwardTimeoutAndStop: a new binary that never reports is
// killed at --upgrade-timeout (rollback); one still starting when the old
// process gets SIGTERM is killed too, and the old process drains and exits.
func TestUpgradeForwardTimeoutAndStop(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "127.0.0.1:0", "--to", up, "--binary", hang,
		"--upgrade-timeout", "1s", "--upgrade-dir", filepath.Join(dir, "run")}, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	old := ch.cmd.Process.Pid

	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	child := int(ch.waitLog(t, "upgrade: new binary started", 1)["pid"].(float64))
	rec := ch.waitLog(t, "upgrade failed; rolled back, this process keeps serving", 1)
	if !strings.Contains(rec["err"].(string), "--upgrade-timeout") {
		t.Errorf("rollback reason %q does not name the timeout", rec["err"])
	}
	if !gone(child) {
		t.Errorf("new process %d still runs after the rollback", child)
	}
	if err := echoOnce(addr, "still serving"); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	child = int(ch.waitLog(t, "upgrade: new binary started", 2)["pid"].(float64))
	if err := syscall.Kill(old, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM during an upgrade", code)
	}
	if !gone(child) {
		t.Errorf("new process %d outlived the old one's SIGTERM", child)
	}
}

// transfer is a checksummed transfer both ways through one pair: the
// client writes size bytes of a seeded stream, the echo upstream sends
// them back, and the client reads them, stalling after a quarter until
// resume is closed, so that the pair holds bytes in flight (in its
// buffers and the sockets') both ways when it is handed over.
type transfer struct {
	c       net.Conn
	size    int64
	paused  chan struct{} // closed once the reader stalls
	resume  chan struct{}
	wrote   chan transferEnd
	read    chan transferEnd
	started time.Time
}

// transferEnd is how one direction ended: the bytes and their SHA-256.
type transferEnd struct {
	n   int64
	sum []byte
	err error
}

func startTransfer(c net.Conn, size int64, seed byte) *transfer {
	tr := &transfer{c: c, size: size, paused: make(chan struct{}), resume: make(chan struct{}),
		wrote: make(chan transferEnd, 1), read: make(chan transferEnd, 1), started: time.Now()}
	go transferWrite(tr, seed)
	go transferRead(tr)
	return tr
}

// transferWrite sends the stream, then half-closes (close_notify on TLS).
func transferWrite(tr *transfer, seed byte) {
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{seed}), tr.size), h)
	n, err := io.Copy(tr.c, src)
	if cw, ok := tr.c.(interface{ CloseWrite() error }); ok && err == nil {
		err = cw.CloseWrite()
	}
	tr.wrote <- transferEnd{n: n, sum: h.Sum(nil), err: err}
}

// transferRead reads the echo until EOF, stalling after a quarter.
func transferRead(tr *transfer) {
	h := sha256.New()
	n, err := io.CopyN(h, tr.c, tr.size/4)
	close(tr.paused)
	<-tr.resume
	if err == nil {
		var m int64
		m, err = io.Copy(h, tr.c)
		n += m
	}
	tr.read <- transferEnd{n: n, sum: h.Sum(nil), err: err}
}

// check waits for both directions and compares what came back with what
// was sent.
func (tr *transfer) check(t *testing.T, wait time.Duration) time.Duration {
	t.Helper()
	var w, r transferEnd
	timeout := time.After(wait)
	for got := 0; got < 2; got++ {
		select {
		case w = <-tr.wrote:
		case r = <-tr.read:
		case <-timeout:
			t.Fatalf("transfer of %d bytes each way not done within %v", tr.size, wait)
		}
	}
	if w.err != nil || r.err != nil || w.n != tr.size || r.n != tr.size {
		t.Fatalf("transfer: wrote %d (%v), read %d (%v), want %d each way", w.n, w.err, r.n, r.err, tr.size)
	}
	if !bytes.Equal(w.sum, r.sum) {
		t.Fatalf("transfer: SHA-256 of the bytes read back %x, of those sent %x", r.sum, w.sum)
	}
	return time.Since(tr.started)
}

// TestUpgradeForwardMovesPairs: a pair in the middle of a transfer both
// ways (its reader stalled, so that bytes are in flight) moves to the new
// process; the old one exits at once, the transfer completes with its
// checksum intact, and the pair is logged once, by the new process, with
// the bytes of both. Plain TCP on the event loops, plain TCP accepted by
// Go, and TLS terminated (on the client side).
func TestUpgradeForwardMovesPairs(t *testing.T) {
	const size = 64 << 20
	t.Run("plain", func(t *testing.T) { testUpgradeMovesPair(t, size, false) })
	t.Run("go-accept", func(t *testing.T) { testUpgradeMovesPair(t, size, false, "--go-accept") })
	t.Run("tls", func(t *testing.T) { testUpgradeMovesPair(t, size, true) })
}

// TestUpgradeForwardMovesGiB is TestUpgradeForwardMovesPairs with 1 GiB
// each way: plain TCP (about 9 s here with -race; not with -short), and
// TLS only when PIPEGATE_UPGRADE_GIB=1 (about 22 s here, the client's
// crypto/tls under -race: by hand).
func TestUpgradeForwardMovesGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 64 MiB in TestUpgradeForwardMovesPairs only")
	}
	const size = 1 << 30
	t.Run("plain", func(t *testing.T) { testUpgradeMovesPair(t, size, false) })
	t.Run("tls", func(t *testing.T) {
		if os.Getenv("PIPEGATE_UPGRADE_GIB") != "1" {
			t.Skip("set PIPEGATE_UPGRADE_GIB=1 to move a TLS pair carrying 1 GiB each way")
		}
		testUpgradeMovesPair(t, size, true)
	})
}

func testUpgradeMovesPair(t *testing.T, size int64, withTLS bool, flags ...string) {
	fwdLeakCheck(t)
	wait := fwdWait + time.Duration(size>>20)*100*time.Millisecond // a slow machine: 10 MiB/s
	up := testserver.Start(t, nil, wait, testserver.Echo)
	dir := t.TempDir()
	args := append([]string{"forward", "--listen", "127.0.0.1:0", "--to", up,
		"--upgrade-dir", filepath.Join(dir, "run"), "--drain-timeout", "1m"}, flags...)
	var ca *tlstest.CA
	if withTLS {
		ca = tlstest.NewCA(t)
		cert, key := ca.Issue(t, "127.0.0.1", "front.example")
		args = append(args, "--tls-cert", cert, "--tls-key", key)
	}
	ch := upStart(t, fwdBin, args, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)

	raw := fwdDial(t, addr)
	raw.SetDeadline(time.Now().Add(wait))
	var c net.Conn = raw
	if withTLS {
		tc := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "front.example"})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c = tc
	}
	tr := startTransfer(c, size, 7)
	select {
	case <-tr.paused:
	case <-time.After(wait):
		t.Fatal("the first quarter of the transfer did not come back")
	}

	old := ch.cmd.Process.Pid
	ch.upgradeTo(t, old, 1)
	rec := ch.waitLog(t, "upgrade: pairs handed over", 1)
	if rec["sent"] != 1.0 || rec["stayed"] != 0.0 {
		t.Fatalf("hand-over %v: want the pair sent", rec)
	}
	// The old process no longer waits for the pair (still stalled, with
	// bytes in flight): it exits.
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d, want 0", code)
	}
	if n := ch.count("connection closed", ""); n != 0 {
		t.Fatalf("%d pairs logged as closed before the transfer ended", n)
	}
	if got := ch.waitLog(t, "upgrade: pairs taken over", 1); got["adopted"] != 1.0 {
		t.Fatalf("taken over: %v", got)
	}
	close(tr.resume)
	took := tr.check(t, wait)
	c.Close()
	line := ch.waitClosed(t, raw)
	if line["bytes_to_upstream"] != float64(size) || line["bytes_to_client"] != float64(size) {
		t.Errorf("log line of the moved pair: %v; want %d bytes each way", line, size)
	}
	t.Logf("%d MiB each way, moved with bytes in flight: %v from the first byte to the last", size>>20, took.Round(time.Millisecond))
}

// TestUpgradeUnixPathRemovedAtExit: a unix: listener's file is removed at
// exit (docs/forward.md) also by a process that took it over in an
// upgrade: its path is the new process's once the old one knows it serves.
func TestUpgradeUnixPathRemovedAtExit(t *testing.T) {
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fwd.sock")
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "unix:" + sock, "--to", up,
		"--upgrade-dir", filepath.Join(dir, "run"), "--drain-timeout", "2s"}, "forward listening", 1)
	newPID := ch.upgradeTo(t, ch.cmd.Process.Pid, 1)
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("old process exit code %d", code)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("after the old process exited: %v", err)
	}
	c, err := net.DialTimeout("unix", sock, fwdWait)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(fwdWait))
	echoOn(t, c, "over unix")
	c.Close()
	if err := syscall.Kill(newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new process exits on SIGTERM", func() bool { return gone(newPID) })
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("unix socket %s left behind by the upgraded process at exit", sock)
	}
}

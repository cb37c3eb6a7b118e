package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestUpgradeDuringDrain: `pipegate upgrade` (systemctl reload) sent to
// a process that drains is refused by it ("SIGUSR2: draining; no
// upgrade"); the command must say so (exit 1 with the reason), not wait
// for its whole --timeout and then report "no outcome".
func TestUpgradeDuringDrain(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "forward.pid")
	ch := upStart(t, fwdBin, []string{"forward", "--listen", "127.0.0.1:0", "--to", up, "--pid-file", pidFile,
		"--upgrade-dir", filepath.Join(dir, "run"), "--drain-timeout", "1m"}, "forward listening", 1)
	addr := ch.waitLog(t, "forward listening", 1)["addr"].(string)
	old := ch.cmd.Process.Pid
	eventually(t, "pid file written", func() bool { p, err := readPIDFile(pidFile); return err == nil && p == old })
	c := longLived(t, addr) // keeps the drain going
	if err := syscall.Kill(old, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ch.waitLog(t, "draining", 1)

	out, err := exec.Command(fwdBin, "upgrade", "--pid-file", pidFile, "--timeout", "3s").CombinedOutput()
	ch.waitLog(t, "SIGUSR2: draining; no upgrade", 1)
	if err == nil || !strings.Contains(string(out), "draining") {
		t.Errorf("pipegate upgrade during a drain: %v, output %q; want exit 1 saying the process drains", err, out)
	}
	c.Close()
	if code := ch.firstCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestReloadFDs: many SIGHUPs (forwards added and removed, plain,
// TLS and Unix; a reload that fails after opening a listener) must leave
// the process with the descriptors it had.
func TestReloadFDs(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "a.example")
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := fmt.Sprintf(`drain_timeout: 5s
forwards:
  - {name: main, listen: "127.0.0.1:0", to: [%s]}
  - name: tls
    listen: "127.0.0.1:0"
    to: [%s]
    tls: {cert: %s, key: %s}
`, up, up, cert, key)
	extra := fmt.Sprintf(`  - {name: x, listen: "127.0.0.1:0", to: [%s]}
  - {name: u, listen: "unix:%s", to: [%s]}
  - name: xt
    listen: "[::1]:0"
    to: [%s]
    tls: {cert: %s, key: %s}
`, up, filepath.Join(dir, "u.sock"), up, up, cert, key)
	broken := extra + fmt.Sprintf("  - {name: z, listen: %q, to: [%s]}\n", busy.Addr().String(), up)
	path := filepath.Join(dir, "forward.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	p := fwdStart(t, 2, "--config", path)
	pid := p.cmd.Process.Pid
	reloads, fails, drained := 0, 0, 0
	cycle := func() {
		write(base + broken) // fails: z's address is taken
		p.cmd.Process.Signal(syscall.SIGHUP)
		fails++
		p.waitLog(t, "reload failed; keeping the running config", fails)
		write(base + extra)
		p.cmd.Process.Signal(syscall.SIGHUP)
		reloads++
		p.waitLog(t, "reloaded", reloads)
		write(base)
		p.cmd.Process.Signal(syscall.SIGHUP)
		reloads++
		p.waitLog(t, "reloaded", reloads)
		drained += 3
		p.waitLog(t, "removed forward drained", drained)
	}
	cycle()
	before, err := procfs.OpenFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	for range 15 {
		cycle()
	}
	after, err := procfs.OpenFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after > before {
		targets, _ := procfs.FDTargets(pid)
		t.Errorf("open descriptors %d after 15 reload cycles, %d before: %v", after, before, targets)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestReloadUnderLoad: SIGHUPs that change a forward in place
// (upstreams, limits, timeouts, go_accept) while clients connect without
// pause: no accepted connection may be lost.
func TestReloadUnderLoad(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	up2 := fwdUpstream(t, nil, testserver.Echo)
	dir := t.TempDir()
	path := filepath.Join(dir, "forward.yaml")
	variants := []string{
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s]}`, up),
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s, %s], balance: roundrobin, max_conns: 1000, idle_timeout: 1m}`, up, up2),
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s], go_accept: true, max_conns_per_ip: 500}`, up2),
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s], send_proxy: ""}`, up),
		// An upstream by host name: the loops hand new connections to Go.
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s]}`, strings.Replace(up, "127.0.0.1", "localhost", 1)),
		fmt.Sprintf(`{name: main, listen: "127.0.0.1:0", to: [%s], idle_timeout: 2m}`, up2),
	}
	write := func(i int) {
		s := "forwards:\n  - " + variants[i%len(variants)] + "\n"
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	p := fwdStart(t, 1, "--config", path)
	addr := p.addr(t, 1)
	h := startHammer(addr, 3)
	eventually(t, "load before the reloads", func() bool { return h.ok.Load() >= 20 })
	for i := 1; i <= 24; i++ {
		write(i)
		p.cmd.Process.Signal(syscall.SIGHUP)
		p.waitLog(t, "reloaded", i)
		n := h.ok.Load()
		eventually(t, "load after a reload", func() bool { return h.ok.Load() >= n+5 })
	}
	h.finish(t, 100)
	if n := p.countMsg("reload failed; keeping the running config"); n > 0 {
		t.Errorf("%d reloads failed", n)
	}
}

func (p *fwdProc) countMsg(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.recs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

// TestDrainUnderLoad: SIGTERM while clients connect without pause.
// Each connection the forwarder took is logged exactly once (closed or
// refused), every client whose echo came back has its one line, and the
// process exits 0.
func TestDrainUnderLoad(t *testing.T) {
	for _, goAccept := range []bool{false, true} {
		t.Run(fmt.Sprintf("go_accept=%v", goAccept), func(t *testing.T) {
			fwdLeakCheck(t)
			up := fwdUpstream(t, nil, testserver.Echo)
			args := []string{"--listen", "127.0.0.1:0", "--to", up, "--drain-timeout", "5s"}
			if goAccept {
				args = append(args, "--go-accept")
			}
			p := fwdStart(t, 1, args...)
			addr := p.addr(t, 1)
			var mu sync.Mutex
			echoed := map[string]bool{}
			h := startHammerFunc(4, func(worker, i int) error {
				c, err := net.DialTimeout("tcp", addr, fwdWait)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(fwdWait))
				if _, err := io.WriteString(c, "x"); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					return err
				}
				mu.Lock()
				echoed[c.LocalAddr().String()] = true
				mu.Unlock()
				return nil
			})
			eventually(t, "load", func() bool { return h.ok.Load() >= 50 })
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.exitCode(t); code != 0 {
				t.Errorf("exit code %d", code)
			}
			close(h.stop)
			<-h.done
			p.mu.Lock()
			defer p.mu.Unlock()
			lines := map[string]int{}
			for _, r := range p.recs {
				if r["msg"] == "connection closed" || r["msg"] == "connection refused" {
					lines[r["client"].(string)]++
				}
			}
			for client, n := range lines {
				if n != 1 {
					t.Errorf("client %s: %d log lines", client, n)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for client := range echoed {
				if lines[client] != 1 {
					t.Errorf("client %s got its echo but has %d log lines", client, lines[client])
				}
			}
		})
	}
}

// TestHupDuringDrain: a SIGHUP (logrotate, a config push) that comes
// while the process drains is not a failed config: it must not be logged
// as ERROR "reload failed; keeping the running config" with the internal
// "forward: server closed".
func TestHupDuringDrain(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	path := fwdWriteConfig(t, fmt.Sprintf("drain_timeout: 1m\nforwards:\n  - {name: a, listen: \"127.0.0.1:0\", to: [%s]}\n", up))
	p := fwdStart(t, 1, "--config", path)
	c := longLived(t, p.addr(t, 1))
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "draining", 1)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "SIGHUP: draining; no reload", 1)
	c.Close()
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.recs {
		if r["level"] == "ERROR" {
			t.Errorf("logged during the drain: %v", r)
		}
	}
}

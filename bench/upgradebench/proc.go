package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
)

// proc is a pipegate mail process this program started, and its log.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once cmd.Wait returned
}

// start runs `pipegate mail` with its stderr (and its successors') in
// logPath, and waits until it logs "mail: listening".
func (b *bench) start(ctx context.Context, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("pipegate log: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(b.pipegate, "mail", "--config", b.config,
		"--pid-file", filepath.Join(b.dir, "mail.pid"), "--upgrade-dir", filepath.Join(b.dir, "run"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", b.pipegate, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go reap(p)
	if _, err := b.waitLog(ctx, p.log, "mail: listening", 1); err != nil {
		p.stop(b.timeout)
		return nil, err
	}
	return p, nil
}

func reap(p *proc) {
	p.cmd.Wait()
	close(p.done)
}

// waitExited waits (bounded) for the process this program started.
func (p *proc) waitExited(ctx context.Context, timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("pid %d still runs after %v", p.cmd.Process.Pid, timeout)
	}
}

func (p *proc) stop(timeout time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// stopPID ends a process that is not our child (the new process of an
// upgrade): SIGTERM, a bounded wait, then SIGKILL.
func stopPID(pid int, timeout time.Duration) error {
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !procfs.Running(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling a process that is not our child
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("pid %d ignored SIGTERM for %v: killed", pid, timeout)
}

// logLine is one JSON line of pipegate's log.
type logLine struct {
	at     time.Time
	fields map[string]any
}

func (l logLine) int(key string) int {
	v, _ := l.fields[key].(float64)
	return int(v)
}

// waitLog polls path until the nth line whose msg is msg appears; its
// time is the line's own (slog: milliseconds).
func (b *bench) waitLog(ctx context.Context, path, msg string, nth int) (logLine, error) {
	deadline := time.Now().Add(b.timeout)
	for {
		if l, ok, err := findLog(path, msg, nth); err != nil || ok {
			return l, err
		}
		if time.Now().After(deadline) {
			return logLine{}, fmt.Errorf("%s: no %q (#%d) within %v", path, msg, nth, b.timeout)
		}
		select {
		case <-ctx.Done():
			return logLine{}, ctx.Err()
		case <-time.After(5 * time.Millisecond): // polling a file another process writes
		}
	}
}

func findLog(path, msg string, nth int) (logLine, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return logLine{}, false, fmt.Errorf("pipegate log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := 0
	for sc.Scan() {
		if !strings.Contains(sc.Text(), msg) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != msg {
			continue
		}
		if seen++; seen < nth {
			continue
		}
		l := logLine{fields: m}
		ts, _ := m["time"].(string)
		if l.at, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return l, false, fmt.Errorf("%s: line %q: time %q: %w", path, msg, ts, err)
		}
		return l, true, nil
	}
	return logLine{}, false, sc.Err()
}

// memory is what /proc says of a process.
type memory struct {
	rssKiB, anonKiB int64 // VmRSS, RssAnon
	fds             int
}

func readMemory(pid int) (memory, error) {
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return memory{}, fmt.Errorf("memory of pid %d (exited?): %w", pid, err)
	}
	fds, err := procfs.OpenFDs(pid)
	if err != nil {
		return memory{}, fmt.Errorf("open files of pid %d: %w", pid, err)
	}
	return memory{rssKiB: st.RSSKiB, anonKiB: st.AnonKiB, fds: fds}, nil
}

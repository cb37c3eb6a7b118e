package realserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a server may take to say it is ready.
const startTimeout = 30 * time.Second

// stopTimeout bounds a graceful stop before SIGKILL.
const stopTimeout = 15 * time.Second

// proc is one server process, restartable with the same arguments.
type proc struct {
	name     string
	path     string
	args     []string
	dir      string
	cred     *syscall.Credential // run as this user (postgres refuses root)
	ready    string              // a line containing this says the server is up
	dialable []string            // and then these addresses accept connections
	stopSig  syscall.Signal
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	scanned  chan struct{} // closed when its output is read to the end
	waitErr  error
	log      *tail
}

// tail keeps the last lines a process printed, for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 40 {
		t.lines = t.lines[len(t.lines)-40:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// Start runs the server (again, on the same port after Stop) and waits
// until it says it is ready.
func (p *proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("realserver: %s: already running", p.name)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr(p.cred)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("realserver: start %s: %w", p.name, err)
	}
	w.Close()
	p.cmd = cmd
	p.log = &tail{}
	p.exited = make(chan struct{})
	p.scanned = make(chan struct{})
	ready := make(chan struct{})
	go scanServerOutput(r, p.ready, p.log, ready, p.scanned)
	go waitServer(cmd, &p.waitErr, p.exited)

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		if err := p.waitDialable(timer.C); err != nil {
			p.signal(syscall.SIGKILL)
			p.reap()
			return err
		}
		return nil
	case <-p.exited:
		p.reap()
		return fmt.Errorf("realserver: %s exited while starting (%v):\n%s", p.name, p.waitErr, p.log)
	case <-timer.C:
		p.signal(syscall.SIGKILL)
		p.reap()
		return fmt.Errorf("realserver: %s not ready after %v:\n%s", p.name, startTimeout, p.log)
	}
}

// waitDialable polls the listen addresses of a server that said it is
// starting but opens its sockets a moment later (slapd): there is no event
// to wait for, so it tries again every 5ms until deadline.
func (p *proc) waitDialable(deadline <-chan time.Time) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, addr := range p.dialable {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-tick.C:
			case <-p.exited:
				return fmt.Errorf("realserver: %s exited while starting (%v):\n%s", p.name, p.waitErr, p.log)
			case <-deadline:
				return fmt.Errorf("realserver: %s does not accept on %s after %v: %v\n%s", p.name, addr, startTimeout, err, p.log)
			}
		}
	}
	return nil
}

// reap waits for the process and its output reader; p.mu is held.
func (p *proc) reap() {
	<-p.exited
	<-p.scanned
	p.cmd = nil
}

// signal sends sig to the server's whole process group; p.mu is held.
func (p *proc) signal(sig syscall.Signal) error {
	if p.cmd == nil {
		return fmt.Errorf("realserver: %s: not running", p.name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("realserver: %s: kill %v: %w", p.name, sig, err)
	}
	return nil
}

// Stop ends the server and waits for it. Stopping a server that is not
// running (or a nil one) is a no-op.
func (p *proc) Stop() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	_ = p.signal(syscall.SIGCONT) // a paused server cannot stop
	if err := p.signal(p.stopSig); err != nil {
		return err
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.signal(syscall.SIGKILL)
	}
	p.reap()
	return nil
}

// Pause freezes the server and every process it started (SIGSTOP; some,
// like PostgreSQL's backends, leave its process group): connections are
// accepted by the kernel but never answered, like a hung server.
func (p *proc) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signalTree(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (p *proc) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signalTree(syscall.SIGCONT)
}

// signalTree signals the server, its group and all its descendants; p.mu is held.
func (p *proc) signalTree(sig syscall.Signal) error {
	if err := p.signal(sig); err != nil {
		return err
	}
	for _, pid := range descendants(p.cmd.Process.Pid) {
		_ = syscall.Kill(pid, sig)
	}
	return nil
}

// Log is the tail of the server's output, for test failure messages.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log == nil {
		return ""
	}
	return p.log.String()
}

// scanServerOutput reads a server's output to its end, closing ready at
// the first line that contains readyText.
func scanServerOutput(r io.ReadCloser, readyText string, log *tail, ready, done chan struct{}) {
	defer close(done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		log.add(line)
		if !seen && strings.Contains(line, readyText) {
			seen = true
			close(ready)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitServer reaps a server process.
func waitServer(cmd *exec.Cmd, errp *error, exited chan struct{}) {
	*errp = cmd.Wait()
	close(exited)
}

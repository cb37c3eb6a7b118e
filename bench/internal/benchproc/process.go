package benchproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultWait is how long Start waits for a server's listeners when
// Server.Wait is zero.
const DefaultWait = 15 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Server says how to start a server process and when it is up.
type Server struct {
	Name string   // in errors: "pipegate", "nginx"
	Argv []string // the command and its arguments
	Log  string   // the file that receives its standard output and error
	// ErrorLog is the file whose content the error of a failed start
	// carries (nginx writes its errors apart); Log if empty.
	ErrorLog string
	Listen   []string      // addresses that accept connections once it is up
	Wait     time.Duration // how long Start waits for Listen; DefaultWait if zero
}

// Process is a server started by Start, in its own process group (its
// pid is the group's id), so that Stop reaches the workers it forks.
type Process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
}

// Start runs s and returns once every address of s.Listen accepts a
// connection. When one does not within s.Wait, the process exits first or
// ctx ends, Start stops the process and returns an error that carries the
// content of its log.
func Start(ctx context.Context, s Server) (*Process, error) {
	if len(s.Argv) == 0 {
		return nil, fmt.Errorf("start %s: no command", s.Name)
	}
	log, err := os.Create(s.Log)
	if err != nil {
		return nil, fmt.Errorf("start %s: log: %w", s.Name, err)
	}
	defer log.Close() // the child holds its own descriptor
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Process{name: s.Name, cmd: cmd, exited: make(chan struct{})}
	go reap(p)
	if err := p.awaitListeners(ctx, s.Listen, s.wait()); err != nil {
		p.Stop()
		errLog := s.ErrorLog
		if errLog == "" {
			errLog = s.Log
		}
		b, _ := os.ReadFile(errLog) // best effort: the error is what matters
		return nil, fmt.Errorf("%w\n%s", err, b)
	}
	return p, nil
}

func (s Server) wait() time.Duration {
	if s.Wait > 0 {
		return s.Wait
	}
	return DefaultWait
}

// reap waits for the process and tells Stop and the listener wait that
// it has exited.
func reap(p *Process) {
	p.cmd.Wait() // its exit status: a stopped server's is a signal
	close(p.exited)
}

// Pgid is the process group of the server and the workers it forks.
func (p *Process) Pgid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM to the process group, and SIGKILL when the process
// has not exited stopGrace later; it returns once the process has exited.
// Stopping a stopped Process does nothing.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	syscall.Kill(-p.Pgid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		syscall.Kill(-p.Pgid(), syscall.SIGKILL)
		<-p.exited
	}
}

// awaitListeners dials each of addrs until it answers, the process exits,
// wait has passed or ctx ends.
func (p *Process) awaitListeners(ctx context.Context, addrs []string, wait time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, wait, fmt.Errorf("not within %v", wait))
	defer cancel()
	for _, a := range addrs {
		if err := p.awaitListener(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (p *Process) awaitListener(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s", p.name, addr)
		case <-ctx.Done():
			return fmt.Errorf("%s: nothing listens on %s: %w", p.name, addr, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond): // polling another process
		}
	}
}

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pipegate/pipegate/upgrade"
)

// upgradeAttempt is one binary upgrade as the old process runs it.
type upgradeAttempt struct {
	opts    *Options
	binary  string
	command string   // forward, mail or imap
	args    []string // the command's arguments as this process got them
	held    *heldListeners
	pairs   Pairs
	log     *slog.Logger
	stdout  io.Writer
	stderr  io.Writer
	// beforeReady, if set, runs before the wait for the new process's
	// verdict, with the channel closed once the process exited (tests).
	beforeReady func(exited <-chan struct{})
}

// run starts the new binary, hands it the listening sockets, waits until
// it serves, then hands over the pairs that can move (the seam). On error
// the new process is killed and this one keeps everything: the upgrade is
// rolled back. ctx ending (SIGTERM) rolls back as well.
func (a *upgradeAttempt) run(ctx context.Context) (pid int, err error) {
	path := filepath.Join(a.opts.Dir, fmt.Sprintf("upgrade-%d.sock", os.Getpid()))
	srv, err := upgrade.Listen(path)
	if err != nil {
		return 0, err
	}
	defer srv.Close()

	cmd := exec.Command(a.binary, childArgs(a.command, a.args, path)...)
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the new binary: %w", err)
	}
	pid = cmd.Process.Pid
	a.log.Info("upgrade: new binary started", "binary", a.binary, "pid", pid, "socket", path, "timeout", a.opts.Timeout)

	// timed bounds the whole attempt; running also ends when the new
	// process exits, which matters until it is connected: from then on
	// its exit closes the channel, after whatever it sent (its reason).
	timed, cancelTimeout := context.WithTimeoutCause(ctx, a.opts.Timeout,
		fmt.Errorf("it did not report serving within --upgrade-timeout %v", a.opts.Timeout))
	defer cancelTimeout()
	running, cancel := context.WithCancelCause(timed)
	defer cancel(nil)
	exited := make(chan struct{})
	go waitNewProcess(cmd, cancel, exited)

	c, err := a.handOver(running, timed, exited, srv)
	if err != nil {
		cmd.Process.Kill() // it may be gone already
		<-exited
		if cause := context.Cause(running); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return 0, fmt.Errorf("new process %d: %w", pid, err)
	}
	defer c.Close()
	a.log.Info("upgrade: new process serves", "pid", pid)

	// The new process serves: from here on the upgrade is not rolled back.
	// The sockets (and Unix sockets' paths) are its; ours go.
	a.held.handedOver()
	// Seam: stop accepting, hand over the established pairs that can move.
	if err := a.pairs.HandOver(context.WithoutCancel(running), c); err != nil {
		a.log.Warn("upgrade: handing over established pairs failed; the rest drain here", "pid", pid, "err", err)
	}
	return pid, nil
}

// handOver accepts the new process, gives it the listeners and waits for
// its verdict. ctx ends when the process exits, timed only at the
// attempt's timeout: the verdict is read under timed, so that a reason
// the process sent just before it exited is not lost to its exit (which
// then shows as the end of the channel).
func (a *upgradeAttempt) handOver(ctx, timed context.Context, exited <-chan struct{}, srv *upgrade.Server) (*upgrade.Conn, error) {
	var c *upgrade.Conn
	for c == nil {
		var err error
		c, err = srv.Accept(ctx)
		if _, foreign := errors.AsType[*upgrade.PeerError](err); foreign {
			a.log.Warn("upgrade: refused a process of another user on the upgrade socket", "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	ls, names := a.held.snapshot()
	if err := upgrade.SendListeners(ctx, c, ls, names); err != nil {
		c.Close()
		return nil, err
	}
	a.log.Info("upgrade: listening sockets handed over", "listeners", names)
	if a.beforeReady != nil {
		a.beforeReady(exited)
	}
	if err := c.WaitReady(timed); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitNewProcess reaps the new process and ends the attempt's context
// when it exits (a crash at start is seen at once, not at the timeout).
func waitNewProcess(cmd *exec.Cmd, cancel context.CancelCauseFunc, exited chan<- struct{}) {
	err := cmd.Wait()
	if err == nil {
		err = errors.New("exit status 0")
	}
	cancel(fmt.Errorf("it exited: %w", err))
	close(exited)
}

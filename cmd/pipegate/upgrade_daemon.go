package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/internal/sdnotify"
	"github.com/pipegate/pipegate/upgrade"
)

// upgrader drives the binary upgrades of one daemon command, on both
// sides. In the running (old) process: SIGUSR2 starts an attempt
// (upgradeAttempt) and its result says whether to stop and drain. In a
// process started by an upgrade (--upgrade-from): it takes the listeners
// over before the daemon starts, and reports Ready (or Failed) to the old
// process. In both: the pid file and systemd's notifications.
type upgrader struct {
	opts    *upgradeOptions
	command string
	args    []string
	binary  string // resolved at start
	held    *heldListeners
	pairs   interface {
		pairHandover
		pairAdopter
	}
	log            *slog.Logger // set once the config is loaded
	stdout, stderr io.Writer

	from    *upgrade.Conn // the old process, until Ready or Failed
	results chan upgradeResult
	ready   bool // the daemon serves: its listeners are all held
	busy    bool // an attempt runs
	done    bool // handed over: draining
	stopped bool // draining (SIGTERM or handed over)
}

// newUpgrader checks the flags; errors name the flag.
func newUpgrader(command string, args []string, opts *upgradeOptions, stdout, stderr io.Writer) (*upgrader, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	bin, err := opts.binaryPath(os.Args[0])
	if err != nil {
		return nil, fmt.Errorf("flag --binary: %w", err)
	}
	return &upgrader{
		opts: opts, command: command, args: args, binary: bin,
		held: newHeldListeners(slog.New(slog.NewTextHandler(stderr, nil))), pairs: noPairs{},
		log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout, stderr: stderr,
		results: make(chan upgradeResult, 1),
	}, nil
}

// setLog sets the daemon's logger once its config is loaded.
func (u *upgrader) setLog(log *slog.Logger) {
	u.log = log
	u.held.log = log
}

// takeOver connects to the old process named by --upgrade-from, if any,
// and receives its listening sockets. Call it before loading the config,
// so that a bad config is reported to the old process (failed).
func (u *upgrader) takeOver(ctx context.Context) error {
	if u.opts.from == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, u.opts.timeout)
	defer cancel()
	c, err := upgrade.Dial(ctx, u.opts.from)
	if err != nil {
		return err
	}
	ls, err := upgrade.RecvListeners(ctx, c)
	if err != nil {
		c.Close()
		return err
	}
	u.from = c
	u.held.inherit(ls)
	return nil
}

// failed tells the old process, if any, why this one cannot serve: it
// keeps serving.
func (u *upgrader) failed(err error) {
	if u.from == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.timeout)
	defer cancel()
	if serr := u.from.Failed(ctx, err.Error()); serr != nil {
		u.log.Warn("upgrade: could not tell the old process why this one fails", "err", serr)
	}
	u.from.Close()
	u.from = nil
}

// serving is called once the daemon serves (its OnServing): the sockets
// received that the config no longer has are closed, the pid file
// written, the old process told (then the pairs it hands over adopted),
// and systemd told, with this process as the main one. An error means
// that the old process could not be told: this one must not serve.
func (u *upgrader) serving(ctx context.Context) error {
	u.ready = true
	u.held.closeInherited()
	if err := u.writePIDFile(); err != nil {
		u.log.Warn("pid file", "err", err)
	}
	notify := []string{sdnotify.Ready, sdnotify.Status("serving")}
	if u.from != nil {
		c := u.from
		u.from = nil
		defer c.Close()
		rctx, cancel := context.WithTimeout(ctx, u.opts.timeout)
		err := c.Ready(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("telling the old process that this one serves: %w", err)
		}
		u.log.Info("upgrade: serving; the old process stops accepting", "pid", os.Getpid())
		notify = append([]string{sdnotify.MainPID(os.Getpid())}, notify...)
		// Seam: adopt the established pairs the old process hands over.
		if err := u.pairs.Adopt(ctx, c); err != nil {
			u.log.Warn("upgrade: adopting established pairs failed; the old process drains them", "err", err)
		}
	}
	u.log.Info("serving", "pid", os.Getpid(), "pid_file", u.opts.pidFile)
	u.notify(notify...)
	return nil
}

// trigger starts an upgrade attempt on SIGUSR2, unless one runs or this
// process has handed over already.
func (u *upgrader) trigger(ctx context.Context) {
	switch {
	case !u.ready:
		u.log.Warn("SIGUSR2: not serving yet; no upgrade")
		return
	case u.done:
		u.log.Warn("SIGUSR2: already handed over to the new process; draining")
		return
	case u.stopped:
		u.log.Warn("SIGUSR2: draining; no upgrade")
		return
	case u.busy:
		u.log.Warn("SIGUSR2: an upgrade is under way already")
		return
	}
	u.busy = true
	u.removeFailedFile()
	u.log.Info("SIGUSR2: upgrading", "binary", u.binary)
	a := &upgradeAttempt{
		opts: u.opts, binary: u.binary, command: u.command, args: u.args,
		held: u.held, pairs: u.pairs, log: u.log, stdout: u.stdout, stderr: u.stderr,
	}
	go runUpgradeAttempt(ctx, a, u.results)
}

// runUpgradeAttempt is the goroutine running one upgrade attempt.
func runUpgradeAttempt(ctx context.Context, a *upgradeAttempt, results chan<- upgradeResult) {
	pid, err := a.run(ctx)
	results <- upgradeResult{pid: pid, err: err}
}

// settle takes an attempt's result; true: the new process serves, this
// one must stop accepting and drain (stop the daemon with the returned
// cause).
func (u *upgrader) settle(r upgradeResult) (cause error, handedOver bool) {
	u.busy = false
	if r.err != nil && u.stopped {
		u.log.Warn("upgrade abandoned: this process is stopping", "err", r.err)
		u.writeFailedFile(r.err)
		return nil, false
	}
	if r.err != nil {
		u.log.Error("upgrade failed; rolled back, this process keeps serving", "err", r.err)
		u.writeFailedFile(r.err)
		if err := u.writePIDFile(); err != nil { // in case the new one wrote it
			u.log.Warn("pid file", "err", err)
		}
		u.notify(sdnotify.Ready, sdnotify.Status("upgrade failed, still serving: "+r.err.Error()))
		return nil, false
	}
	u.done = true
	u.notify(sdnotify.MainPID(r.pid), sdnotify.Status(fmt.Sprintf("handed over to pid %d; draining", r.pid)))
	return fmt.Errorf("upgraded: pid %d serves now", r.pid), true
}

// stopping is called when the daemon starts draining (its context
// ended): the duplicates of the listening sockets are closed with the
// daemon's own listeners, so that the kernel refuses new connections
// rather than queueing them for no one.
func (u *upgrader) stopping() {
	u.stopped = true
	u.held.retain(nil)
	if !u.done { // else the new process is systemd's main one
		u.notify(sdnotify.Stopping)
	}
}

// wait waits for an attempt still running (ctx ended: it rolls back).
func (u *upgrader) wait() {
	if u.busy {
		u.settle(<-u.results)
	}
}

// close releases the held sockets and the pid file, unless the new
// process has it; a process started by an upgrade that did not serve
// tells the old one.
func (u *upgrader) close() {
	if u.from != nil {
		u.failed(errors.New("it stopped before serving"))
	}
	u.held.close()
	if u.opts.pidFile != "" && !u.done {
		if b, err := os.ReadFile(u.opts.pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(u.opts.pidFile)
		}
	}
}

func (u *upgrader) notify(states ...string) {
	if _, err := sdnotify.Notify(states...); err != nil {
		u.log.Warn("systemd notify", "err", err)
	}
}

// writePIDFile writes our pid to --pid-file atomically.
func (u *upgrader) writePIDFile() error {
	if u.opts.pidFile == "" {
		return nil
	}
	return writeFileAtomic(u.opts.pidFile, strconv.Itoa(os.Getpid())+"\n")
}

// failedFile says why the last upgrade was rolled back, for `pipegate
// upgrade`.
func (u *upgrader) failedFile() string { return u.opts.pidFile + ".upgrade-failed" }

func (u *upgrader) writeFailedFile(err error) {
	if u.opts.pidFile == "" {
		return
	}
	if werr := writeFileAtomic(u.failedFile(), err.Error()+"\n"); werr != nil {
		u.log.Warn("upgrade failure file", "err", werr)
	}
}

func (u *upgrader) removeFailedFile() {
	if u.opts.pidFile != "" {
		os.Remove(u.failedFile())
	}
}

// writeFileAtomic replaces path with data (a temporary file renamed).
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = tmp.WriteString(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pipegate/pipegate/internal/sdnotify"
	"github.com/pipegate/pipegate/upgrade"
)

// Upgrader drives the binary upgrades of one daemon command, on both
// sides. In the running (old) process: SIGUSR2 starts an attempt
// (Trigger) and its Result says whether to stop and drain (Settle). In a
// process started by an upgrade (Options.From): it takes the listeners
// over before the daemon starts (TakeOver), and reports Ready (Serving)
// or Failed to the old process. In both: the pid file and systemd's
// notifications.
//
// Its methods are called from the one goroutine that runs the daemon
// command's select loop, except the listen hooks (any goroutine).
type Upgrader struct {
	opts           *Options
	command        string
	args           []string
	binary         string // resolved at start
	held           *heldListeners
	pairs          Pairs
	log            *slog.Logger // set once the config is loaded
	stdout, stderr io.Writer

	from    *upgrade.Conn // the old process, until Ready or Failed
	results chan Result
	ready   bool // the daemon serves: its listeners are all held
	busy    bool // an attempt runs
	done    bool // handed over: draining
	stopped bool // draining (SIGTERM or handed over)
}

// Result is how an upgrade attempt ended: the new process's pid, or why
// it was rolled back.
type Result struct {
	PID int
	Err error
}

// New checks opts for the daemon command (forward, mail or imap) started
// with args; errors name the flag. The new binary is opts.Binary, else
// the path this process was started as (os.Args[0]), resolved now. Until
// SetLog, it logs as text to stderr; the new binary's output goes to
// stdout and stderr.
func New(command string, args []string, opts *Options, stdout, stderr io.Writer) (*Upgrader, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	bin, err := opts.binaryPath(os.Args[0])
	if err != nil {
		return nil, fmt.Errorf("flag --binary: %w", err)
	}
	return &Upgrader{
		opts: opts, command: command, args: args, binary: bin,
		held: newHeldListeners(slog.New(slog.NewTextHandler(stderr, nil))), pairs: noPairs{},
		log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout, stderr: stderr,
		results: make(chan Result, 1),
	}, nil
}

// SetLog sets the daemon's logger once its config is loaded.
func (u *Upgrader) SetLog(log *slog.Logger) {
	u.log = log
	u.held.log = log
}

// SetPairs sets the daemon's side of the seam that moves established
// pairs (the default moves none: they drain in the old process). Call it
// before the daemon serves.
func (u *Upgrader) SetPairs(p Pairs) { u.pairs = p }

// Listen returns the daemon's listen hook for listeners of kind (such as
// "forward" or "listen"): it gives the socket received from the old
// process under "kind addr" when there is one, else opens addr with open,
// and keeps a duplicate of the socket to hand over at the next upgrade.
func (u *Upgrader) Listen(kind string, open func(addr string) (net.Listener, error)) func(addr string) (net.Listener, error) {
	return u.held.hook(kind, open)
}

// ListenQuiet is Listen for a listener that the daemon closes only at
// the end of its drain (the metrics endpoint): once handed over, it stops
// accepting here at once, so that /healthz and /metrics are the new
// process's, not a draining one's.
func (u *Upgrader) ListenQuiet(kind string, open func(addr string) (net.Listener, error)) func(addr string) (net.Listener, error) {
	return u.held.quietHook(kind, open)
}

// Retain closes the duplicates kept of the sockets not named in live
// ("kind addr", as the hooks name them), which the daemon closed at a
// reload, so that their ports are free again.
func (u *Upgrader) Retain(live []string) { u.held.retain(live) }

// Results delivers the result of each attempt started by Trigger; give
// it to Settle.
func (u *Upgrader) Results() <-chan Result { return u.results }

// TakeOver connects to the old process named by --upgrade-from, if any,
// and receives its listening sockets. Call it before loading the config,
// so that a bad config is reported to the old process (failed).
func (u *Upgrader) TakeOver(ctx context.Context) error {
	if u.opts.From == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, u.opts.Timeout)
	defer cancel()
	c, err := upgrade.Dial(ctx, u.opts.From)
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

// Failed tells the old process, if any, why this one cannot serve: it
// keeps serving.
func (u *Upgrader) Failed(err error) {
	if u.from == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.Timeout)
	defer cancel()
	if serr := u.from.Failed(ctx, err.Error()); serr != nil {
		u.log.Warn("upgrade: could not tell the old process why this one fails", "err", serr)
	}
	u.from.Close()
	u.from = nil
}

// Serving is called once the daemon serves (its OnServing): the sockets
// received that the config no longer has are closed, the pid file
// written, the old process told (then the pairs it hands over adopted),
// and systemd told, with this process as the main one. An error means
// that the old process could not be told: this one must not serve.
func (u *Upgrader) Serving(ctx context.Context) error {
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
		rctx, cancel := context.WithTimeout(ctx, u.opts.Timeout)
		err := c.Ready(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("telling the old process that this one serves: %w", err)
		}
		u.held.owned()
		u.log.Info("upgrade: serving; the old process stops accepting", "pid", os.Getpid())
		notify = append([]string{sdnotify.MainPID(os.Getpid())}, notify...)
		// Seam: adopt the established pairs the old process hands over.
		if err := u.pairs.Adopt(ctx, c); err != nil {
			u.log.Warn("upgrade: adopting established pairs failed; the old process drains them", "err", err)
		}
	}
	u.log.Info("serving", "pid", os.Getpid(), "pid_file", u.opts.PIDFile)
	u.notify(notify...)
	return nil
}

// Trigger starts an upgrade attempt on SIGUSR2, unless one runs or this
// process has handed over already.
func (u *Upgrader) Trigger(ctx context.Context) {
	switch {
	case !u.ready:
		u.refuse("not serving yet; no upgrade")
		return
	case u.done:
		u.refuse("already handed over to the new process; draining")
		return
	case u.stopped:
		u.refuse("draining; no upgrade")
		return
	case u.busy: // `pipegate upgrade` waits for the outcome of the one under way
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
func runUpgradeAttempt(ctx context.Context, a *upgradeAttempt, results chan<- Result) {
	pid, err := a.run(ctx)
	results <- Result{PID: pid, Err: err}
}

// Settle takes an attempt's result; true: the new process serves, this
// one must stop accepting and drain (stop the daemon with the returned
// cause).
func (u *Upgrader) Settle(r Result) (cause error, handedOver bool) {
	u.busy = false
	if r.Err != nil && u.stopped {
		u.log.Warn("upgrade abandoned: this process is stopping", "err", r.Err)
		u.writeFailedFile(r.Err)
		return nil, false
	}
	if r.Err != nil {
		u.log.Error("upgrade failed; rolled back, this process keeps serving", "err", r.Err)
		u.writeFailedFile(r.Err)
		if err := u.writePIDFile(); err != nil { // in case the new one wrote it
			u.log.Warn("pid file", "err", err)
		}
		u.notify(sdnotify.Ready, sdnotify.Status("upgrade failed, still serving: "+r.Err.Error()))
		return nil, false
	}
	u.done = true
	u.notify(sdnotify.MainPID(r.PID), sdnotify.Status(fmt.Sprintf("handed over to pid %d; draining", r.PID)))
	return fmt.Errorf("upgraded: pid %d serves now", r.PID), true
}

// Stopping is called when the daemon starts draining (its context
// ended): the duplicates of the listening sockets are closed with the
// daemon's own listeners, so that the kernel refuses new connections
// rather than queueing them for no one.
func (u *Upgrader) Stopping() {
	u.stopped = true
	u.held.retain(nil)
	if !u.done { // else the new process is systemd's main one
		u.notify(sdnotify.Stopping)
	}
}

// Wait waits for an attempt still running (ctx ended: it rolls back).
func (u *Upgrader) Wait() {
	if u.busy {
		u.Settle(<-u.results)
	}
}

// Close releases the held sockets and the pid file, unless the new
// process has it; a process started by an upgrade that did not serve
// tells the old one.
func (u *Upgrader) Close() {
	if u.from != nil {
		u.Failed(errors.New("it stopped before serving"))
	}
	u.held.close()
	if u.opts.PIDFile != "" && !u.done {
		if b, err := os.ReadFile(u.opts.PIDFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(u.opts.PIDFile)
		}
	}
}

func (u *Upgrader) notify(states ...string) {
	if _, err := sdnotify.Notify(states...); err != nil {
		u.log.Warn("systemd notify", "err", err)
	}
}

// writePIDFile writes our pid to --pid-file atomically.
func (u *Upgrader) writePIDFile() error {
	if u.opts.PIDFile == "" {
		return nil
	}
	return writeFileAtomic(u.opts.PIDFile, strconv.Itoa(os.Getpid())+"\n")
}

// failedFile says why the last upgrade was rolled back, for `pipegate
// upgrade`.
func (u *Upgrader) failedFile() string { return u.opts.PIDFile + ".upgrade-failed" }

func (u *Upgrader) writeFailedFile(err error) {
	if u.opts.PIDFile == "" {
		return
	}
	if werr := writeFileAtomic(u.failedFile(), err.Error()+"\n"); werr != nil {
		u.log.Warn("upgrade failure file", "err", werr)
	}
}

// refuse logs why a SIGUSR2 starts no upgrade and says so in the failure
// file, so that `pipegate upgrade` tells at once (it waited out its
// timeout).
func (u *Upgrader) refuse(why string) {
	u.log.Warn("SIGUSR2: " + why)
	u.writeFailedFile(errors.New(refusedPrefix + why))
}

// refusedPrefix starts a failure file that says the upgrade never began
// (rather than was rolled back).
const refusedPrefix = "refused: "

func (u *Upgrader) removeFailedFile() {
	if u.opts.PIDFile != "" {
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

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pipegate/pipegate/upgrade/process"
)

// upgradeFlags are the names of the flags of registerUpgradeFlags
// (allowed next to --config).
var upgradeFlags = []string{"pid-file", "upgrade-dir", "upgrade-timeout", "binary", "upgrade-from"}

// registerUpgradeFlags registers the flags of the daemon commands (forward,
// mail, imap) for binary upgrades on SIGUSR2 (docs/upgrade.md) into o.
func registerUpgradeFlags(fs *flag.FlagSet, o *process.Options) {
	fs.StringVar(&o.PIDFile, "pid-file", "", "write the process id to this `file` once serving (an upgrade rewrites it with the new process's)")
	fs.StringVar(&o.Dir, "upgrade-dir", process.DefaultDir(), "private `directory` (0700) of the upgrade hand-over socket")
	fs.DurationVar(&o.Timeout, "upgrade-timeout", process.DefaultTimeout, "on SIGUSR2, give the new binary this `duration` to serve before rolling back")
	fs.StringVar(&o.Binary, "binary", "", "on SIGUSR2, start this `file` (default: the path this binary was started as)")
	fs.StringVar(&o.From, "upgrade-from", "", "take over the listeners of the process at this upgrade `socket` (set by the upgrade itself)")
}

// daemonProcess is a daemon command's upgrader and the signals it acts on
// besides its context's: SIGHUP (reload) and SIGUSR2 (upgrade).
type daemonProcess struct {
	up        *process.Upgrader
	hup, usr2 chan os.Signal
}

// startDaemonProcess makes the upgrader of `pipegate command` and
// subscribes to SIGHUP and SIGUSR2 before it takes over from an old
// process, so that a signal sent right after start-up is not lost. On
// failure it prints why and returns the exit code (2: bad upgrade flags,
// 1: the take-over failed). Close the daemonProcess when done.
func startDaemonProcess(ctx context.Context, command string, args []string, o *process.Options, stdout, stderr io.Writer) (*daemonProcess, int) {
	up, err := process.New(command, args, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return nil, 2
	}
	p := &daemonProcess{up: up, hup: make(chan os.Signal, 1), usr2: make(chan os.Signal, 1)}
	signal.Notify(p.hup, syscall.SIGHUP)
	signal.Notify(p.usr2, syscall.SIGUSR2)
	if err := up.TakeOver(ctx); err != nil {
		p.close()
		fmt.Fprintf(stderr, "pipegate %s: %v\n", command, err)
		return nil, 1
	}
	return p, 0
}

// close stops the signals and closes the upgrader.
func (p *daemonProcess) close() {
	signal.Stop(p.hup)
	signal.Stop(p.usr2)
	p.up.Close()
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// upgradeOptions are the flags of the daemon commands (forward, mail,
// imap) for binary upgrades on SIGUSR2 (docs/upgrade.md).
type upgradeOptions struct {
	pidFile string        // --pid-file: written once serving, for `pipegate upgrade`
	dir     string        // --upgrade-dir: private directory of the hand-over socket
	timeout time.Duration // --upgrade-timeout: for the new process to serve
	binary  string        // --binary: the new binary (default: this one's path)
	from    string        // --upgrade-from: set by the old process for the new one
}

// upgradeFlags are the names of the flags above (allowed next to --config).
var upgradeFlags = []string{"pid-file", "upgrade-dir", "upgrade-timeout", "binary", "upgrade-from"}

// defaultUpgradeTimeout bounds an upgrade from the new binary's start to
// its report that it serves.
const defaultUpgradeTimeout = 30 * time.Second

func (o *upgradeOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.pidFile, "pid-file", "", "write the process id to this `file` once serving (an upgrade rewrites it with the new process's)")
	fs.StringVar(&o.dir, "upgrade-dir", defaultUpgradeDir(), "private `directory` (0700) of the upgrade hand-over socket")
	fs.DurationVar(&o.timeout, "upgrade-timeout", defaultUpgradeTimeout, "on SIGUSR2, give the new binary this `duration` to serve before rolling back")
	fs.StringVar(&o.binary, "binary", "", "on SIGUSR2, start this `file` (default: the path this binary was started as)")
	fs.StringVar(&o.from, "upgrade-from", "", "take over the listeners of the process at this upgrade `socket` (set by the upgrade itself)")
}

// defaultUpgradeDir is systemd's RuntimeDirectory= if set, else
// $XDG_RUNTIME_DIR/pipegate, else /run/pipegate.
func defaultUpgradeDir() string {
	if d, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pipegate")
	}
	return "/run/pipegate"
}

// check checks the upgrade flags; errors name the flag.
func (o *upgradeOptions) check() error {
	switch {
	case o.timeout <= 0:
		return fmt.Errorf("flag --upgrade-timeout: %v: want a positive duration", o.timeout)
	case o.dir == "":
		return errors.New("flag --upgrade-dir: empty")
	case o.pidFile != "" && !filepath.IsAbs(o.pidFile):
		return fmt.Errorf("flag --pid-file: %q: want an absolute path (the new process may start elsewhere)", o.pidFile)
	}
	return nil
}

// binaryPath is the binary to start on SIGUSR2: --binary, else argv0 as
// resolved now (before an upgrade replaces the file: the path, not the
// running file, is what a package upgrade changes).
func (o *upgradeOptions) binaryPath(argv0 string) (string, error) {
	p := o.binary
	if p == "" {
		p = argv0
	}
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("binary %q: %w", p, err)
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("binary %q: %w", p, err)
	}
	return abs, nil
}

// childArgs are the arguments of the new process: the command,
// --upgrade-from socket, then the command's arguments as given (less a
// previous --upgrade-from).
func childArgs(command string, args []string, socket string) []string {
	out := []string{command, "--upgrade-from", socket}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "upgrade-from" {
			if !hasValue {
				i++ // its value
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const upgradeUsage = `usage: pipegate upgrade --pid-file FILE [--timeout D]

Upgrades the running pipegate whose --pid-file is FILE: sends it SIGUSR2
and waits until the new process serves (FILE names it: exit 0) or the
upgrade was rolled back (exit 1, with the reason; the old process keeps
serving). The old process re-runs its binary path (or its --binary) with
the same arguments; the new one re-reads the config. See docs/upgrade.md.

flags:
`

// runUpgrade is `pipegate upgrade`: exit 0 once the new process serves, 1
// when the upgrade failed or took too long, 2 on bad usage.
func runUpgrade(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipegate upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), upgradeUsage)
		fs.PrintDefaults()
	}
	pidFile := fs.String("pid-file", "", "the running daemon's --pid-file")
	timeout := fs.Duration("timeout", defaultUpgradeTimeout+10*time.Second, "give up waiting after this `duration` (the daemon's --upgrade-timeout, and more)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *pidFile == "" || fs.NArg() > 0 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	pid, err := upgradeOnce(ctx, *pidFile, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate upgrade: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pipegate upgrade: pid %d serves now\n", pid)
	return 0
}

// upgradeOnce signals the daemon of pidFile and waits for the outcome: the
// pid file naming another live process, or the old one's failure file.
func upgradeOnce(ctx context.Context, pidFile string, timeout time.Duration) (int, error) {
	old, err := readPIDFile(pidFile)
	if err != nil {
		return 0, err
	}
	failed := pidFile + ".upgrade-failed"
	if err := os.Remove(failed); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		return 0, fmt.Errorf("signalling pid %d (from %s): %w", old, pidFile, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // no event to wait for: poll the files
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(failed); err == nil {
			return 0, fmt.Errorf("rolled back, pid %d keeps serving: %s", old, strings.TrimSpace(string(b)))
		}
		if pid, err := readPIDFile(pidFile); err == nil && pid != old && syscall.Kill(pid, 0) == nil {
			return pid, nil
		}
		if syscall.Kill(old, 0) != nil {
			return 0, fmt.Errorf("pid %d exited and no new process wrote %s", old, pidFile)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("pid %d: no outcome within %v: see its log", old, timeout)
		case <-tick.C:
		}
	}
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a process id", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

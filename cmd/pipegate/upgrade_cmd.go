package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pipegate/pipegate/upgrade/process"
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
	timeout := fs.Duration("timeout", process.DefaultTimeout+10*time.Second, "give up waiting after this `duration` (the daemon's --upgrade-timeout, and more)")
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
	pid, err := process.Request(ctx, *pidFile, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "pipegate upgrade: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pipegate upgrade: pid %d serves now\n", pid)
	return 0
}

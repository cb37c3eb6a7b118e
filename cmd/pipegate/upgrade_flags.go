package main

import (
	"flag"

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

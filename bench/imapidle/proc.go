package main

import (
	"fmt"

	"github.com/pipegate/pipegate/internal/procfs"
)

// usage is what a process holds at one point of the run.
type procUsage struct {
	sessions int
	rssKiB   int64 // VmRSS
	fds      int   // entries of /proc/PID/fd
}

// measure reads pid's resident memory and open files.
func measure(pid, sessions int) (procUsage, error) {
	u := procUsage{sessions: sessions}
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return u, fmt.Errorf("proxy pid %d (exited?): %w", pid, err)
	}
	u.rssKiB = st.RSSKiB
	if u.fds, err = procfs.OpenFDs(pid); err != nil {
		return u, fmt.Errorf("open files of pid %d: %w", pid, err)
	}
	return u, nil
}

// perSession is the growth from a to b per session added: KiB of RSS
// and open files.
func perSession(a, b procUsage) (kib, fds float64) {
	n := float64(b.sessions - a.sessions)
	if n <= 0 {
		return 0, 0
	}
	return float64(b.rssKiB-a.rssKiB) / n, float64(b.fds-a.fds) / n
}

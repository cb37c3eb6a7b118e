package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("proxy pid %d (exited?): %w", pid, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKiB, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return u, fmt.Errorf("/proc/%d/status: VmRSS %q: %w", pid, v, err)
			}
		}
	}
	if u.rssKiB == 0 {
		return u, fmt.Errorf("/proc/%d/status: no VmRSS (a zombie?)", pid)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, fmt.Errorf("open files of pid %d: %w", pid, err)
	}
	u.fds = len(fds)
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

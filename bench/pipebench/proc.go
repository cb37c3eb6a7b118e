package main

import (
	"fmt"
	"os"

	"github.com/pipegate/pipegate/internal/procfs"
)

// The figures below are 0 when /proc cannot be read (the process has
// gone): the error goes to standard error, the run goes on.

// procCPU returns the user+system CPU seconds used by a process so far.
func procCPU(pid int) float64 {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		warn(err)
		return 0
	}
	return st.CPU().Seconds()
}

// machineCPU returns the busy CPU seconds of the whole machine so far.
func machineCPU() float64 {
	busy, err := procfs.MachineCPU()
	if err != nil {
		warn(err)
		return 0
	}
	return busy.Seconds()
}

// procRSS returns a process's resident memory in bytes.
func procRSS(pid int) int64 {
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		warn(err)
		return 0
	}
	return st.RSSKiB << 10
}

// procFDs returns how many files a process has open.
func procFDs(pid int) int {
	n, err := procfs.OpenFDs(pid)
	if err != nil {
		warn(err)
		return 0
	}
	return n
}

func warn(err error) { fmt.Fprintln(os.Stderr, "pipebench:", err) }

package benchproc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// GroupRSS sums VmRSS (KiB) over the processes of process group pgid.
func GroupRSS(pgid int) (int64, error) {
	var total int64
	err := eachInGroup(pgid, func(dir string, _ []string) {
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			return // gone
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb
			}
		}
	})
	if err == nil && total == 0 {
		err = fmt.Errorf("no process in group %d", pgid)
	}
	if err != nil {
		return 0, fmt.Errorf("RSS of process group %d: %w", pgid, err)
	}
	return total, nil
}

// GroupCPU returns the CPU time (user and system, reaped children
// included) of the processes of group pgid, in clock ticks (USER_HZ: 1/100
// s on Linux).
func GroupCPU(pgid int) (int64, error) {
	var total int64
	found := false
	err := eachInGroup(pgid, func(_ string, stat []string) {
		// state ppid pgrp session tty tpgid flags minflt cminflt majflt
		// cmajflt utime stime cutime cstime ...
		if len(stat) < 15 {
			return
		}
		found = true
		for _, v := range stat[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("no process in group %d", pgid)
	}
	if err != nil {
		return 0, fmt.Errorf("CPU time of process group %d: %w", pgid, err)
	}
	return total, nil
}

// eachInGroup calls f with the /proc folder of every process of group
// pgid and the fields of its stat after the command name (state ppid pgrp
// ...). Processes that end meanwhile are passed over.
func eachInGroup(pgid int, f func(dir string, stat []string)) error {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	want := strconv.Itoa(pgid)
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		f(d, fields)
	}
	return nil
}

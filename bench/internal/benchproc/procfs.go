package benchproc

import (
	"fmt"

	"github.com/pipegate/pipegate/internal/procfs"
)

// GroupRSS sums VmRSS (KiB) over the processes of process group pgid.
func GroupRSS(pgid int) (int64, error) {
	members, err := group(pgid)
	if err != nil {
		return 0, fmt.Errorf("RSS of process group %d: %w", pgid, err)
	}
	var total int64
	for _, p := range members {
		if st, err := procfs.ReadStatus(p.PID); err == nil {
			total += st.RSSKiB
		} // else gone, or a zombie: no memory
	}
	if total == 0 {
		return 0, fmt.Errorf("RSS of process group %d: no process in group %d", pgid, pgid)
	}
	return total, nil
}

// GroupCPU returns the CPU time (user and system, reaped children
// included) of the processes of group pgid, in clock ticks
// (procfs.TicksPerSecond).
func GroupCPU(pgid int) (int64, error) {
	members, err := group(pgid)
	if err == nil && len(members) == 0 {
		err = fmt.Errorf("no process in group %d", pgid)
	}
	if err != nil {
		return 0, fmt.Errorf("CPU time of process group %d: %w", pgid, err)
	}
	var total int64
	for _, p := range members {
		total += p.CPUTicks() + p.CUTime + p.CSTime
	}
	return total, nil
}

// group returns the processes of group pgid.
func group(pgid int) ([]procfs.Stat, error) {
	all, err := procfs.Processes()
	if err != nil {
		return nil, err
	}
	var members []procfs.Stat
	for _, p := range all {
		if p.PGRP == pgid {
			members = append(members, p)
		}
	}
	return members, nil
}

package procfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MachineCPU returns the busy time of all the machine's CPUs since boot,
// from the "cpu" line of /proc/stat: user, nice, system, irq, softirq and
// steal; idle and iowait are not busy, and guest time is already in user.
func MachineCPU() (time.Duration, error) {
	ticks, err := readFile("/proc/stat", parseMachineCPU)
	return Ticks(ticks), err
}

// parseMachineCPU sums the busy fields of the first line of /proc/stat:
// "cpu user nice system idle iowait irq softirq steal guest guest_nice".
func parseMachineCPU(text string) (int64, error) {
	first, _, _ := strings.Cut(text, "\n")
	f := strings.Fields(first)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, errors.New(`no "cpu" line first`)
	}
	names := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
	var busy int64
	for i, v := range f[1:min(len(f), 1+len(names))] {
		if names[i] == "idle" || names[i] == "iowait" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu %s: %w", names[i], err)
		}
		busy += n
	}
	return busy, nil
}

// TCPOutSegs returns the TCP segments the machine (this network
// namespace) has sent since boot, from the OutSegs column of /proc/net/snmp.
// On loopback each segment is counted once, by its sender.
func TCPOutSegs() (int64, error) {
	return readFile("/proc/net/snmp", parseTCPOutSegs)
}

// parseTCPOutSegs finds OutSegs in the "Tcp:" pair of lines of
// /proc/net/snmp: one of column names, then one of values.
func parseTCPOutSegs(text string) (int64, error) {
	var names []string
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, "Tcp:")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		values := strings.Fields(rest)
		for i, name := range names {
			if name == "OutSegs" && i < len(values) {
				n, err := strconv.ParseInt(values[i], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("snmp Tcp OutSegs: %w", err)
				}
				return n, nil
			}
		}
		break
	}
	return 0, errors.New("no OutSegs in the Tcp lines")
}

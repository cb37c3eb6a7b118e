package procfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TicksPerSecond is USER_HZ, the unit of the CPU times in /proc: 100 on
// every Linux architecture Go runs on.
const TicksPerSecond = 100

// Stat is what the benches read of /proc/PID/stat.
type Stat struct {
	PID   int
	Comm  string // the command name, without its parentheses
	State byte   // 'R', 'S', 'D', 'Z' (a zombie), ...
	PPID  int    // the parent
	PGRP  int    // the process group
	// UTime and STime are the user and system CPU time of all the
	// process's threads, in ticks (TicksPerSecond).
	UTime, STime int64
	// CUTime and CSTime are those of its children that it has reaped.
	CUTime, CSTime int64
}

// CPUTicks is the process's own CPU time, user and system, in ticks.
func (s Stat) CPUTicks() int64 { return s.UTime + s.STime }

// CPU is CPUTicks as a duration.
func (s Stat) CPU() time.Duration { return Ticks(s.CPUTicks()) }

// Ticks converts a count of ticks (TicksPerSecond) to a duration.
func Ticks(n int64) time.Duration { return time.Duration(n) * time.Second / TicksPerSecond }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	return readFile("/proc/"+strconv.Itoa(pid)+"/stat", parseStat)
}

// parseStat parses a stat line: "pid (comm) state ppid pgrp ...". The
// command name may hold spaces and parentheses, so the fields are those
// after the last ')'.
func parseStat(line string) (Stat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return Stat{}, errors.New("no command name in parentheses")
	}
	var st Stat
	var err error
	if st.PID, err = strconv.Atoi(strings.TrimSpace(line[:open])); err != nil {
		return Stat{}, fmt.Errorf("pid: %w", err)
	}
	st.Comm = line[open+1 : end]
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime ...
	f := strings.Fields(line[end+1:])
	if len(f) < 15 {
		return Stat{}, fmt.Errorf("%d fields after the command name, want 15 or more", len(f))
	}
	st.State = f[0][0]
	for _, v := range []struct {
		name string
		s    string
		dst  *int64
	}{
		{"utime", f[11], &st.UTime}, {"stime", f[12], &st.STime},
		{"cutime", f[13], &st.CUTime}, {"cstime", f[14], &st.CSTime},
	} {
		if *v.dst, err = strconv.ParseInt(v.s, 10, 64); err != nil {
			return Stat{}, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("ppid: %w", err)
	}
	if st.PGRP, err = strconv.Atoi(f[2]); err != nil {
		return Stat{}, fmt.Errorf("pgrp: %w", err)
	}
	return st, nil
}

// Processes returns the Stat of every process in /proc. Processes that
// end while it reads are left out.
func Processes() ([]Stat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process: /proc/self, /proc/stat, ...
		}
		st, err := ReadStat(pid)
		if gone(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// gone: err says that the process has ended (its folder went, or reading
// its file found no process).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// Running reports whether pid is a process that has not ended: it exists
// and is no zombie (one whose parent, perhaps not this process, has not
// reaped it yet).
func Running(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z'
}

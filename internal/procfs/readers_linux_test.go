package procfs

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// noPID is above the kernel's largest pid (PID_MAX_LIMIT, 2^22).
const noPID = 1 << 30

// TestParseErrors: each parser refuses a text it cannot read, and says
// what it lacks.
func TestParseErrors(t *testing.T) {
	parsers := map[string]func(string) error{
		"parseStat":       func(s string) error { _, err := parseStat(s); return err },
		"parseStatus":     func(s string) error { _, err := parseStatus(s); return err },
		"parseMachineCPU": func(s string) error { _, err := parseMachineCPU(s); return err },
	}
	for _, c := range []struct{ parser, in, want string }{
		{"parseStat", "4711 a S 1 4711", "no command name"},
		{"parseStat", "4711 (a S 1 4711", "no command name"},
		{"parseStat", "x (a) S 1 4711 4711 0 -1 0 0 0 0 0 7 3 2 1", "pid"},
		{"parseStat", "4711 (a) S 1 4711 4711", "4 fields after the command name"},
		{"parseStat", "4711 (a) S 1 4711 4711 0 -1 0 0 0 0 0 7 x 2 1", "stime"},
		{"parseStat", "4711 (a) S one 4711 4711 0 -1 0 0 0 0 0 7 3 2 1", "ppid"},
		{"parseStatus", "Name:\tzombie\nState:\tZ (zombie)\n", "no VmRSS"},
		{"parseStatus", "VmRSS:\t  12x kB\n", "VmRSS"},
		{"parseStatus", "VmRSS:\t  12 kB\nRssAnon:\t kB\n", "RssAnon"},
		{"parseMachineCPU", "intr 1 2\ncpu 1 2 3 4 5\n", `no "cpu" line`},
		{"parseMachineCPU", "cpu 1 2\n", `no "cpu" line`},
		{"parseMachineCPU", "cpu 1 2 x 4 5 6 7 8\n", "cpu system"},
	} {
		if err := parsers[c.parser](c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s(%q) = %v; want an error with %q", c.parser, c.in, err, c.want)
		}
	}
}

// TestReadSelf reads this process's stat and status.
func TestReadSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Error(err)
	} else if st.PID != os.Getpid() || st.PPID != os.Getppid() || st.PGRP != syscall.Getpgrp() {
		t.Errorf("ReadStat(self) = %+v; want pid %d, ppid %d, pgrp %d", st, os.Getpid(), os.Getppid(), syscall.Getpgrp())
	}
	mem, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Error(err)
	} else if mem.RSSKiB <= 0 || mem.AnonKiB <= 0 || mem.AnonKiB > mem.RSSKiB {
		t.Errorf("ReadStatus(self) = %+v; want 0 < RssAnon <= VmRSS", mem)
	}
}

// TestNoProcess: each reader of a process that does not exist says so
// (fs.ErrNotExist) and names its file.
func TestNoProcess(t *testing.T) {
	for _, c := range []struct {
		file string
		read func(pid int) error
	}{
		{"/proc/1073741824/stat", func(pid int) error { _, err := ReadStat(pid); return err }},
		{"/proc/1073741824/status", func(pid int) error { _, err := ReadStatus(pid); return err }},
		{"/proc/1073741824/fd", func(pid int) error { _, err := OpenFDs(pid); return err }},
	} {
		if err := c.read(noPID); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), c.file) {
			t.Errorf("reading %s: %v; want not-exist naming the file", c.file, err)
		}
	}
}

// TestRunning: this process runs; a child that has exited and is not yet
// reaped is a zombie, so not running; a pid that does not exist is not.
func TestRunning(t *testing.T) {
	if !Running(os.Getpid()) {
		t.Error("Running(self) = false")
	}
	if Running(noPID) {
		t.Error("Running(no such pid) = true")
	}
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	// WNOWAIT: wait until the child has exited, but leave it a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	zombie := Running(p.Pid)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if zombie {
		t.Errorf("Running(exited child %d) = true before Wait", p.Pid)
	}
	if Running(p.Pid) {
		t.Errorf("Running(reaped child %d) = true", p.Pid)
	}
}

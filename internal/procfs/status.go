package procfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Status is what the benches read of /proc/PID/status.
type Status struct {
	RSSKiB  int64 // VmRSS: resident memory
	AnonKiB int64 // RssAnon: its anonymous part (heap, stacks); 0 before Linux 4.5
}

// ReadStatus reads /proc/PID/status. A process without resident memory
// (a zombie, a kernel thread) is an error.
func ReadStatus(pid int) (Status, error) {
	return readFile("/proc/"+strconv.Itoa(pid)+"/status", parseStatus)
}

// parseStatus reads the "Key:  N kB" lines of a status file.
func parseStatus(text string) (Status, error) {
	var st Status
	found := false
	for line := range strings.SplitSeq(text, "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst, found = &st.RSSKiB, true
		case "RssAnon":
			dst = &st.AnonKiB
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return Status{}, fmt.Errorf("%s: %w", key, err)
		}
		*dst = n
	}
	if !found {
		return Status{}, errors.New("no VmRSS (a zombie or a kernel thread?)")
	}
	return st, nil
}

// OpenFDs counts the entries of /proc/PID/fd: the files the process has
// open. Another user's process is an error (permission denied).
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err // a *fs.PathError: names the folder
	}
	return len(ents), nil
}

// FDTargets returns what each of pid's open descriptors is, by number:
// the target of its link in /proc/PID/fd ("socket:[123]", "pipe:[45]",
// "/dev/null", ...). A descriptor closed while it reads (the one that
// reads the folder, in this process) is left out.
func FDTargets(pid int) (map[int]string, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fds := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil {
			fds[n] = l
		}
	}
	return fds, nil
}

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Request upgrades the daemon whose Options.PIDFile is pidFile, as
// `pipegate upgrade` does: it sends SIGUSR2 and waits, up to timeout, for
// the outcome: the pid file naming another live process (its pid is
// returned), or the old one's failure file (the reason is in the error: a
// rollback, or a refusal to begin, as while it drains).
func Request(ctx context.Context, pidFile string, timeout time.Duration) (int, error) {
	old, err := ReadPIDFile(pidFile)
	if err != nil {
		return 0, err
	}
	failed := pidFile + ".upgrade-failed"
	if err := os.Remove(failed); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		return 0, fmt.Errorf("signalling pid %d (from %s): %w", old, pidFile, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond) // no event to wait for: poll the files
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(failed); err == nil {
			why := strings.TrimSpace(string(b))
			if rest, ok := strings.CutPrefix(why, refusedPrefix); ok {
				return 0, fmt.Errorf("pid %d refused to upgrade: %s", old, rest)
			}
			return 0, fmt.Errorf("rolled back, pid %d keeps serving: %s", old, why)
		}
		if pid, err := ReadPIDFile(pidFile); err == nil && pid != old && syscall.Kill(pid, 0) == nil {
			return pid, nil
		}
		if syscall.Kill(old, 0) != nil {
			return 0, fmt.Errorf("pid %d exited and no new process wrote %s", old, pidFile)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("pid %d: no outcome within %v: see its log", old, timeout)
		case <-tick.C:
		}
	}
}

// ReadPIDFile reads the process id in the pid file at path.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a process id", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

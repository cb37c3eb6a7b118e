package process

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestUpgradeReasonAfterExit: the new process's reason for not serving
// reaches the old process's error even when the new process has exited
// before the old one reads it (a bad config is found, told and exited on
// at once): its exit does not cut the channel short.
func TestUpgradeReasonAfterExit(t *testing.T) {
	t.Setenv(childEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &upgradeAttempt{
		opts:   &Options{Dir: dir, Timeout: time.Minute},
		binary: exe, command: "forward",
		held: newHeldListeners(log), log: log, stdout: io.Discard, stderr: io.Discard,
		beforeReady: func(exited <-chan struct{}) { <-exited },
	}
	_, err = a.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), childReason) || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("upgrade error %v; want the new process's reason %q and its exit status 2", err, childReason)
	}
}

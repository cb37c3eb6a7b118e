package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// dialUntil's failures.
var (
	errExitedFirst  = errors.New("exited before listening")
	errNotListening = errors.New("nothing listens")
)

// dialUntil dials network addr until it answers (nil), exited is closed
// (errExitedFirst: the server died) or deadline passes (errNotListening),
// waiting 2 ms after the first try, then twice as long each time, at most
// 100 ms.
func dialUntil(network, addr string, exited <-chan struct{}, deadline time.Time) error {
	for delay := 2 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errExitedFirst
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return errNotListening
		}
	}
}

// sharedTempDir makes a temporary directory named for server that the
// server's own processes, which drop root, can read and traverse
// (os.MkdirTemp makes it 0700, and t.TempDir's parents are 0700 too).
func sharedTempDir(server string) (string, error) {
	dir, err := os.MkdirTemp("", "pipegate-"+server+"-")
	if err != nil {
		return "", fmt.Errorf("%s: %w", server, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: %w", server, err)
	}
	return dir, nil
}

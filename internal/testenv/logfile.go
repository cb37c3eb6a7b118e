package testenv

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ErrLogTimeout is returned by FindLog when no line matched in time.
var ErrLogTimeout = errors.New("no matching log line")

// readFile is the file at path so far; "" if it cannot be read (yet).
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// findLog polls the log file at path (server's) until a line matches the
// regular expression pattern and returns that line, or fails with
// ErrLogTimeout after limit.
func findLog(server, path, pattern string, limit time.Duration) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("%s log pattern: %w", server, err)
	}
	deadline := time.Now().Add(limit)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		for _, line := range strings.Split(readFile(path), "\n") {
			if re.MatchString(line) {
				return line, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w for %q in %s within %v", ErrLogTimeout, pattern, path, limit)
		}
		time.Sleep(delay) // polling a file with a deadline, not synchronisation by time
	}
}

// waitLog is findLog with a 10 s limit that fails t, showing the log so
// far.
func waitLog(t testing.TB, server, path, pattern string) string {
	t.Helper()
	line, err := findLog(server, path, pattern, 10*time.Second)
	if err != nil {
		t.Fatalf("%v\nlog so far:\n%s", err, readFile(path))
	}
	return line
}

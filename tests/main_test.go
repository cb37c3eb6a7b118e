// Package tests holds pipegate's end-to-end tests: the built binary
// between real clients (go-imap, python3 imaplib, curl, raw sockets) and
// real servers (two Dovecot instances, an in-memory go-imap server).
//
// Run as root with dovecot-imapd installed (apt-get install -y
// dovecot-imapd curl python3); without them the tests skip, unless
// PIPEGATE_REQUIRE_REAL=1.
//
//	go test ./tests/
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// pipegateBin is the binary built by TestMain.
var pipegateBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pipegate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pipegateBin = filepath.Join(dir, "pipegate")
	build := exec.Command("go", "build", "-o", pipegateBin, "./cmd/pipegate")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/pipegate: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}

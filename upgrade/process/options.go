package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Options are the upgrade settings of a daemon command; cmd/pipegate
// fills them from its flags, whose names the errors of Check and New use.
type Options struct {
	PIDFile string        // --pid-file: written once serving, for `pipegate upgrade`
	Dir     string        // --upgrade-dir: private directory of the hand-over socket
	Timeout time.Duration // --upgrade-timeout: for the new process to serve
	Binary  string        // --binary: the new binary (default: this one's path)
	From    string        // --upgrade-from: set by the old process for the new one
}

// DefaultTimeout bounds an upgrade from the new binary's start to its
// report that it serves.
const DefaultTimeout = 30 * time.Second

// DefaultDir is systemd's RuntimeDirectory= if set, else
// $XDG_RUNTIME_DIR/pipegate, else /run/pipegate.
func DefaultDir() string {
	if d, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pipegate")
	}
	return "/run/pipegate"
}

// Check checks the options; errors name the flag.
func (o *Options) Check() error {
	switch {
	case o.Timeout <= 0:
		return fmt.Errorf("flag --upgrade-timeout: %v: want a positive duration", o.Timeout)
	case o.Dir == "":
		return errors.New("flag --upgrade-dir: empty")
	case o.PIDFile != "" && !filepath.IsAbs(o.PIDFile):
		return fmt.Errorf("flag --pid-file: %q: want an absolute path (the new process may start elsewhere)", o.PIDFile)
	case o.PIDFile != "":
		// Checked at start: found missing once serving, `pipegate upgrade`
		// would have no pid to signal.
		if fi, err := os.Stat(filepath.Dir(o.PIDFile)); err != nil || !fi.IsDir() {
			why := "not a directory"
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("flag --pid-file: %q: its directory: %s (create it; under systemd, RuntimeDirectory=pipegate makes /run/pipegate)", o.PIDFile, why)
		}
	}
	return nil
}

// binaryPath is the binary to start on SIGUSR2: --binary, else argv0 as
// resolved now (before an upgrade replaces the file: the path, not the
// running file, is what a package upgrade changes).
func (o *Options) binaryPath(argv0 string) (string, error) {
	p := o.Binary
	if p == "" {
		p = argv0
	}
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("binary %q: %w", p, err)
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("binary %q: %w", p, err)
	}
	return abs, nil
}

// childArgs are the arguments of the new process: the command,
// --upgrade-from socket, then the command's arguments as given (less a
// previous --upgrade-from).
func childArgs(command string, args []string, socket string) []string {
	out := []string{command, "--upgrade-from", socket}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "upgrade-from" {
			if !hasValue {
				i++ // its value
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

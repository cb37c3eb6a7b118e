package benchproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Binary returns the path of the server command name: as found in PATH,
// else /usr/sbin/name (where Debian puts it, which a PATH may lack).
func Binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// Version returns what argv prints about its version, trimmed: its
// standard output, or its standard error when the output is empty (nginx
// -v writes there); empty when it cannot run.
func Version(argv ...string) string {
	if len(argv) == 0 {
		return ""
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Run() // a version string is informative; what it printed is all there is
	if out.Len() == 0 {
		return strings.TrimSpace(errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// LogicalCPUs counts the processors in /proc/cpuinfo (1 when it cannot be
// read).
func LogicalCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

// TempDir makes a temporary folder named after pattern (as os.MkdirTemp)
// that every user may read and enter: the unprivileged processes of
// Dovecot and nginx read configuration files there.
func TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("temporary folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("temporary folder: %w", err)
	}
	return dir, nil
}

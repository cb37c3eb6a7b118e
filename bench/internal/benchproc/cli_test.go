package benchproc

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	f.Register(fs, 200)
	f.RegisterSessions(fs)
	if err := fs.Parse([]string{"--rounds", "3"}); err != nil {
		t.Fatal(err)
	}
	if f != (Flags{Logins: 200, Rounds: 3, Sessions: 400}) {
		t.Errorf("flags = %+v", f)
	}
	var ue *UsageError
	if err := f.Check("bench/x.sh"); !errors.As(err, &ue) || err.Error() != "--pipegate BIN is required (bench/x.sh passes it)" {
		t.Errorf("Check without --pipegate: %v", err)
	}
	f.Pipegate = "bin/pipegate"
	if err := f.Check("bench/x.sh"); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestRunStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("backend: refused"), 1},
		{Usagef("--key %q: want a or b", "c"), 2},
	} {
		if got := runQuiet(t, c.err); got != c.want {
			t.Errorf("Run returning %v: status %d, want %d", c.err, got, c.want)
		}
	}
}

// runQuiet calls Run with its standard error sent to a temporary file.
func runQuiet(t *testing.T, err error) int {
	t.Helper()
	return withStderr(t, func() int { return Run("xbench", func() error { return err }) })
}

// withStderr runs f with os.Stderr sent to a file in t's folder.
func withStderr(t *testing.T, f func() int) int {
	t.Helper()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	saved := os.Stderr
	os.Stderr = file
	defer func() { os.Stderr = saved }()
	return f()
}

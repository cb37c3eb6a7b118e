package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	text := "Name:\tx y\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nRssAnon:\t     567 kB\nThreads:\t5\n"
	got, err := parseStatus(text)
	if err != nil || got != (Status{RSSKiB: 1234, AnonKiB: 567}) {
		t.Errorf("parseStatus = %+v, %v; want 1234 and 567 KiB", got, err)
	}
}

func TestOpenFDs(t *testing.T) {
	before, err := OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	opened, err := OpenFDs(os.Getpid())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	closed, err := OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if opened != before+1 || closed != before {
		t.Errorf("open files: %d, %d with one more opened, %d once closed", before, opened, closed)
	}
}

// TestFDTargets: a file opened shows under its descriptor with its path,
// and a pipe as "pipe:[...]"; closed, they are gone.
func TestFDTargets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ffd, rfd := int(f.Fd()), int(r.Fd())
	open, err := FDTargets(os.Getpid())
	f.Close()
	r.Close()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := open[ffd]; got != path {
		t.Errorf("descriptor of %s: %q", path, got)
	}
	if got := open[rfd]; !strings.HasPrefix(got, "pipe:[") {
		t.Errorf("descriptor of a pipe: %q", got)
	}
	closed, err := FDTargets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for fd, target := range closed {
		if target == path {
			t.Errorf("descriptor %d still open on %s after Close", fd, path)
		}
	}
	if len(closed) != len(open)-3 {
		t.Errorf("%d descriptors open, %d after closing 3", len(open), len(closed))
	}
}

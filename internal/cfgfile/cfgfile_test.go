package cfgfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(file, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pem")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		limit int64
		want  string // content, or an error's text after "PATH: "
	}{
		{file, cfgfile.Small, "0123456789"},
		{link, cfgfile.Small, "0123456789"},
		{file, 10, "0123456789"},
		{file, 9, "larger than 9 bytes"},
		{fifo, cfgfile.Small, "not a regular file (a named pipe)"},
		{"/dev/zero", cfgfile.Small, "not a regular file (a device)"},
		{dir, cfgfile.Small, "not a regular file (a directory)"},
	} {
		got, err := cfgfile.Read(tc.path, tc.limit)
		if err != nil {
			if want := tc.path + ": " + tc.want; err.Error() != want {
				t.Errorf("Read(%s, %d): %v, want %q", tc.path, tc.limit, err, want)
			}
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Read(%s, %d) = %q, want %q", tc.path, tc.limit, got, tc.want)
		}
	}
	_, err := cfgfile.Read(filepath.Join(dir, "missing"), cfgfile.Small)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v, want fs.ErrNotExist naming the path", err)
	}
}

func TestReadable(t *testing.T) {
	dir := t.TempDir()
	file, empty := filepath.Join(dir, "key.pem"), filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(file, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfgfile.Readable(file); err != nil {
		t.Errorf("Readable(%s): %v", file, err)
	}
	for path, want := range map[string]string{
		empty:       "empty file",
		fifo:        "not a regular file (a named pipe)",
		"/dev/zero": "not a regular file (a device)",
	} {
		if err := cfgfile.Readable(path); err == nil || err.Error() != path+": "+want {
			t.Errorf("Readable(%s): %v, want %q", path, err, path+": "+want)
		}
	}
}

func ExampleRead() {
	_, err := cfgfile.Read("/dev/zero", cfgfile.Small)
	fmt.Println(err)
	// Output: /dev/zero: not a regular file (a device)
}

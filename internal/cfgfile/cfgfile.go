// Package cfgfile reads the files a configuration names (the config itself,
// certificates, keys, CA bundles, ticket keys, secrets, routing tables)
// with two checks os.ReadFile lacks: the path must be a regular file, so a
// named pipe or a device such as /dev/zero is refused at once instead of
// blocking or reading forever, and the file must fit a size limit.
//
//	data, err := cfgfile.Read("/etc/pipegate/cert.pem", cfgfile.Small)
//	if err != nil {
//		return fmt.Errorf("tls cert: %w", err) // "/etc/pipegate/cert.pem: not a regular file (a device)"
//	}
package cfgfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits for Read.
const (
	// Small fits a config file, a certificate chain, a key, a CA bundle,
	// a ticket key file or a secret.
	Small = 16 << 20
	// Table fits a routing table file.
	Table = 1 << 30
)

// Read returns the content of the regular file at path (symbolic links
// followed). Errors name the path: one that does not exist or cannot be
// read (the *fs.PathError of os), one that is not a regular file, one
// larger than limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read one byte past the limit to tell a file that is too large.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

// Readable checks that path is a regular file with at least one byte that
// this process may read, so that a config check fails on the key that
// names it rather than later, in a TLS library's words.
func Readable(path string) error {
	f, err := openRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty file", path)
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// openRegular opens path for reading if it is a regular file. O_NONBLOCK
// keeps the open of a named pipe from waiting for a writer; it changes
// nothing for a regular file.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, kind(fi.Mode()))
	}
	return f, nil
}

func tooLarge(path string, limit int64) error {
	if limit >= 1<<20 && limit%(1<<20) == 0 {
		return fmt.Errorf("%s: larger than %d MiB", path, limit>>20)
	}
	return fmt.Errorf("%s: larger than %d bytes", path, limit)
}

// kind names a mode that is not a regular file's.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + m.String()
	}
}

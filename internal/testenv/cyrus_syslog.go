package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Cyrus logs with syslog(3) only, which glibc sends to the datagram
// socket /dev/log. A test machine has no syslog daemon, and a test must
// not take /dev/log from others (several instances run at once). So the
// master runs in a private mount namespace whose /dev is a directory of
// links to the real devices (reached through a bind mount of the real
// /dev made in that namespace too) plus a log link to the instance's own
// socket, read by a syslogSink into the instance's log file.

// syslogSink receives syslog datagrams on a unix socket and writes each,
// without its "<PRI>", as a line of a file.
type syslogSink struct {
	path string // the socket
	conn *net.UnixConn
	out  *os.File
	done chan struct{}
}

// listenSyslog listens on the unix datagram socket path (writable by the
// cyrus user) and appends what arrives to the file logPath.
func listenSyslog(path, logPath string) (*syslogSink, error) {
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cyrus log: %w", err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("cyrus log: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		out.Close()
		return nil, fmt.Errorf("cyrus log: %w", err)
	}
	s := &syslogSink{path: path, conn: conn, out: out, done: make(chan struct{})}
	go readSyslog(s)
	return s, nil
}

// readSyslog is the sink's goroutine: it writes datagrams until the
// socket is closed.
func readSyslog(s *syslogSink) {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return // closed (or broken: nothing more will come)
		}
		msg := buf[:n]
		if len(msg) > 0 && msg[0] == '<' {
			if i := bytes.IndexByte(msg, '>'); i > 0 && i < 5 {
				msg = msg[i+1:]
			}
		}
		msg = bytes.TrimRight(msg, "\n\x00")
		_, _ = s.out.Write(append(msg, '\n'))
	}
}

// close stops the sink; the file keeps what it received.
func (s *syslogSink) close() error {
	err := s.conn.Close()
	<-s.done
	return errors.Join(err, s.out.Close(), os.Remove(s.path))
}

// privateDev fills dir/dev with a link for every entry of /dev to the
// same name in dir/realdev (where the namespace's shell binds the real
// /dev), and a link log to the socket sock. It returns both directories.
func privateDev(dir, sock string) (devDir, realDir string, err error) {
	devDir, realDir = filepath.Join(dir, "dev"), filepath.Join(dir, "realdev")
	entries, err := os.ReadDir("/dev")
	if err != nil {
		return "", "", fmt.Errorf("cyrus: %w", err)
	}
	for _, e := range entries {
		if e.Name() == "log" {
			continue
		}
		link := filepath.Join(devDir, e.Name())
		if _, err := os.Lstat(link); err == nil {
			continue // made by an earlier start of this instance
		}
		if err := os.Symlink(filepath.Join(realDir, e.Name()), link); err != nil {
			return "", "", fmt.Errorf("cyrus: %w", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(devDir, "log")); err != nil {
		if err := os.Symlink(sock, filepath.Join(devDir, "log")); err != nil {
			return "", "", fmt.Errorf("cyrus: %w", err)
		}
	}
	return devDir, realDir, nil
}

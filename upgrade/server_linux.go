package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Server is the old process's end: the upgrade socket, on which it accepts
// the new process.
type Server struct {
	path string
	ln   *net.UnixListener
	amu  sync.Mutex // one Accept at a time
}

// Listen makes the upgrade socket at path: its directory is created with
// mode 0700 if missing, and must otherwise be a directory of our uid that
// no one else may enter (mode 0700 or stricter); the socket gets mode
// 0600. A stale socket left by a crashed process is replaced; a socket on
// which a process still listens is an error (another upgrade under way).
func Listen(path string) (*Server, error) {
	path = filepath.Clean(path)
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listening on %s: %w", path, err)
	}
	// The directory keeps others out meanwhile.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("upgrade: socket mode: %w", err)
	}
	return &Server{path: path, ln: ln}, nil
}

// privateDir makes dir (0700) or checks that it is private to our uid.
func privateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("upgrade: making directory %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // whatever the umask
			return fmt.Errorf("upgrade: directory %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("upgrade: directory %s: %w", dir, err)
	}
	uid := uint32(os.Getuid())
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("upgrade: %s is not a directory (%s)", dir, fi.Mode().Type())
	case !ok || st.Uid != uid:
		return fmt.Errorf("upgrade: directory %s is not owned by uid %d", dir, uid)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("upgrade: directory %s has mode %04o: want 0700, private to uid %d (systemd: RuntimeDirectoryMode=0700)",
			dir, fi.Mode().Perm(), uid)
	}
	return nil
}

// removeStale removes a socket at path that no process listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upgrade: %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("upgrade: %s exists and is not a socket (%s)", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("upgrade: a process already listens on %s (another upgrade under way?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("upgrade: probing %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("upgrade: removing stale socket: %w", err)
	}
	return nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Accept waits for the new process and greets it. A process of another
// uid is told why and refused with a *PeerError; the Server stays usable,
// so the caller may log the error and Accept again.
func (s *Server) Accept(ctx context.Context) (*Conn, error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	release := watch(ctx, s.ln.SetDeadline)
	uc, err := s.ln.AcceptUnix()
	release()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("upgrade: accepting on %s: %w", s.path, err)
	}
	c, err := newConn(uc)
	if err != nil {
		uc.Close()
		return nil, err
	}
	if err := c.checkPeer(); err != nil {
		if _, ok := err.(*PeerError); ok {
			// Best effort, bounded: the refused peer may not read.
			c.uc.SetWriteDeadline(time.Now().Add(time.Second))
			c.Send(context.Background(), kindRefused, []byte(err.Error()))
		}
		c.Close()
		return nil, err
	}
	hello, _ := json.Marshal(helloMeta{Protocol: protocolVersion, Taken: true})
	if err := c.Send(ctx, kindHello, hello); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the socket and removes its path. Conns accepted before stay
// open.
func (s *Server) Close() error { return s.ln.Close() }

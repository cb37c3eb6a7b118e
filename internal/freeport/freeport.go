// Package freeport finds loopback TCP ports for tests and benchmarks
// that must name a port before the server that will listen on it starts
// (Dovecot, slapd, PostgreSQL, Redis, a pipegate child process).
//
// A port found by listening on port 0 and closing is only free a moment
// ago, and the kernel may hand the same port to the next such probe: two
// listeners of one configuration then collide. Port never returns a port
// it has returned before in this process, nor one that another process
// using this package (go test runs packages in parallel) took in the
// last claimFor: each port taken is claimed by a file in the system's
// temporary directory.
//
//	addr, err := freeport.Addr()
//	if err != nil {
//		return err
//	}
//	cfg := fmt.Sprintf("listen: %s\n", addr)
package freeport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// claimFor is how long a port claimed by another process stays out of
// reach: longer than any test run takes to start its server.
const claimFor = 10 * time.Minute

// given holds the ports returned so far by this process. It is the one
// piece of package state: the callers that must not collide are spread
// over packages that share nothing else.
var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Port returns a TCP port on 127.0.0.1 that nobody listened on a moment
// ago and that Port has not returned before.
func Port() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		given.Lock()
		seen := given.ports[p]
		given.ports[p] = true
		given.Unlock()
		if !seen && claim(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("free port: the kernel gave only ports already handed out in 100 tries")
}

// Addr is Port as "127.0.0.1:port".
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// claim reports whether port p is this process's to use: no other
// process claimed it within claimFor. Where the claim files cannot be
// written, every port is.
func claim(p int) bool {
	dir := filepath.Join(os.TempDir(), "pipegate-freeport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	name := filepath.Join(dir, strconv.Itoa(p))
	for range 2 {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			f.Close()
			return true
		}
		if !errors.Is(err, fs.ErrExist) {
			return true
		}
		st, err := os.Stat(name)
		if err != nil || time.Since(st.ModTime()) < claimFor {
			return false
		}
		os.Remove(name) // an old claim; the next round may take it
	}
	return false
}

// Package freeport finds loopback TCP ports for tests and benchmarks
// that must name a port before the server that will listen on it starts
// (Dovecot, slapd, PostgreSQL, Redis, a pipegate child process).
//
// A port found by listening on port 0 and closing is only free a moment
// ago, and the kernel may hand the same port to the next such probe, or
// to any connection as its source port: two listeners of one
// configuration then collide, or a server finds its port taken. Port
// takes its ports below the kernel's ephemeral range, where connections
// do not take theirs. Port never returns a port
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
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// ago and that Port has not returned before. It takes it below the
// kernel's ephemeral range (see belowEphemeral) when there is room there.
func Port() (int, error) {
	if lo, hi := belowEphemeral(); hi-lo >= minBelow {
		for range 200 {
			p := lo + rand.IntN(hi-lo+1)
			if listenable(p) && take(p) {
				return p, nil
			}
		}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if take(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("free port: the kernel gave only ports already handed out in 100 tries")
}

// take reports whether p is this process's to return: not returned
// before, nor claimed by another process.
func take(p int) bool {
	given.Lock()
	seen := given.ports[p]
	given.ports[p] = true
	given.Unlock()
	return !seen && claim(p)
}

// listenable reports whether 127.0.0.1:p can be listened on now.
func listenable(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// lowestPort and minBelow: Port's ports below the ephemeral range start
// at lowestPort, if that leaves at least minBelow of them.
const (
	lowestPort = 10000
	minBelow   = 1000
)

// belowEphemeral returns the ports from lowestPort up to the start of
// the kernel's ephemeral range (net.ipv4.ip_local_port_range), or 0, 0
// where that cannot be read. connect(2) picks source ports in that
// range, and a test run makes thousands of connections: a port found
// free there may be some connection's before the server binds it
// ("address already in use"). Below it, only an explicit bind takes one.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	return lowestPort, start - 1
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

// Package realserver starts real servers from Debian's packages (OpenLDAP
// slapd, PostgreSQL, Redis) for tests: each on a free loopback port, with
// its own configuration and data in a directory the caller owns, as a
// child process that dies with the test binary.
//
// Start them once per package in TestMain and let each test ask for them:
//
//	var redisSrv *realserver.Redis
//	var redisErr error
//
//	func TestMain(m *testing.M) {
//		dir, _ := os.MkdirTemp("", "pipegate-redis-")
//		redisSrv, redisErr = realserver.StartRedis(dir)
//		realserver.RunTests(m, func() { redisSrv.Stop() }, func() { os.RemoveAll(dir) })
//	}
//
//	func TestLookup(t *testing.T) {
//		realserver.Need(t, redisErr) // skips if redis-server is not installed
//		...
//	}
//
// A server whose binary is missing gives an error wrapping ErrMissing;
// Need turns that into t.Skip, or into t.Fatal when PIPEGATE_REQUIRE_REAL=1
// (as CI sets it). Stop and Start again keep the port, so a test can check
// that a client recovers from a server that went away; Pause and Resume
// (SIGSTOP/SIGCONT) make a server that accepts but never answers.
package realserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pipegate/pipegate/internal/freeport"
)

// ErrMissing says a server's binary is not installed.
var ErrMissing = errors.New("realserver: not installed")

// RequireEnv is the environment variable that turns a missing server from
// a skip into a failure.
const RequireEnv = "PIPEGATE_REQUIRE_REAL"

// Required reports whether PIPEGATE_REQUIRE_REAL=1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Need stops tb unless the server started (err == nil): a missing binary
// skips the test, any other failure fails it.
func Need(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrMissing) && !Required() {
		tb.Skipf("%v (set %s=1 to make this a failure)", err, RequireEnv)
	}
	tb.Fatal(err)
}

// find returns the first existing path among candidates (globs allowed),
// then tries $PATH for the base name.
func find(pkg string, candidates ...string) (string, error) {
	for _, c := range candidates {
		matches, _ := filepath.Glob(c)
		for i := len(matches) - 1; i >= 0; i-- { // highest version last in glob order
			if st, err := os.Stat(matches[i]); err == nil && !st.IsDir() {
				return matches[i], nil
			}
		}
	}
	if len(candidates) > 0 {
		if p, err := exec.LookPath(filepath.Base(candidates[0])); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s (apt-get install %s)", ErrMissing, filepath.Base(candidates[0]), pkg)
}

// freePort finds a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	p, err := freeport.Port()
	if err != nil {
		return 0, fmt.Errorf("realserver: %w", err)
	}
	return p, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

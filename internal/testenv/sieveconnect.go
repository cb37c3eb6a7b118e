package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// SieveConnect is a login of the real ManageSieve client sieve-connect
// (Debian's sieve-connect): STARTTLS verified against CAFile for
// TLSName, then AUTHENTICATE PLAIN as User with Password.
type SieveConnect struct {
	Addr           string // host:port of the server (or the proxy)
	User, Password string
	CAFile         string
	TLSName        string   // the name the certificate must hold
	Extra          []string // more flags for every run (--ignoreserverversion, say)
}

// Run runs sieve-connect once with args (--upload, --list, ...) and
// returns its output; a failure, or a run past 30 s, fails t. A missing
// sieve-connect skips t, or fails it under PIPEGATE_REQUIRE_REAL=1.
func (s SieveConnect) Run(t testing.TB, args ...string) string {
	t.Helper()
	bin := LookPath(t, "sieve-connect", "sieve-connect")
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatalf("sieve-connect: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe() // the password, on descriptor 3
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, _ = w.WriteString(s.Password + "\n")
	w.Close()
	flags := []string{"--server", host, "--port", port, "--user", s.User, "--passwordfd", "3",
		"--tlscafile", s.CAFile, "--tlshostname", s.TLSName, "--authmech", "PLAIN"}
	cmd := exec.CommandContext(ctx, bin, append(append(flags, s.Extra...), args...)...)
	cmd.ExtraFiles = []*os.File{r}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sieve-connect %s %v: %v\n%s", s.Addr, args, err, out)
	}
	return string(out)
}

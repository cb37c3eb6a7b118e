package authhttp

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/route"
)

// startPythonService runs testdata/authserver.py, an auth_http service
// written the way operators write them for nginx, and returns its URL.
func startPythonService(t *testing.T, users string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		realserver.Need(t, errors.Join(realserver.ErrMissing, errors.New("python3 (apt-get install python3)")))
	}
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/authserver.py", file)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "PORT ")
	if err != nil || !ok {
		t.Fatalf("authserver.py did not print its port: %q, %v", line, err)
	}
	return "http://127.0.0.1:" + port + "/auth"
}

func TestPythonService(t *testing.T) {
	url := startPythonService(t, `# account password host port [tls] [login]
alice@a.test secret 127.0.0.1 14301
bob%20b@a.test pw%25 127.0.0.1 19932 tls bob
`)
	s := newSource(t, Config{URL: url, PassPassword: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := netip.MustParseAddrPort("192.0.2.7:4000")

	rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test", Password: "secret",
		AuthMethod: "login", Attempt: 1, ClientAddr: client})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Backends[0].String(); got != "imap://127.0.0.1:14301" || rt.Login != "" {
		t.Errorf("alice: %s login %q", got, rt.Login)
	}

	// A space and a percent sign survive nginx's escaping and Python's unquote.
	rt, err = s.Lookup(ctx, route.Request{Protocol: "imap", Account: "bob b@a.test", Password: "pw%",
		AuthMethod: "plain", Attempt: 1, ClientAddr: client})
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Backends[0].String(); got != "imaps://127.0.0.1:19932" || rt.Login != "bob" {
		t.Errorf("bob: %s login %q, want imaps://127.0.0.1:19932 and bob", got, rt.Login)
	}

	var d *route.Denied
	_, err = s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test", Password: "wrong",
		AuthMethod: "plain", Attempt: 3, ClientAddr: client})
	if !errors.As(err, &d) || d.Text != "Invalid login or password" || d.Wait != 3*time.Second {
		t.Fatalf("wrong password: err = %#v, want Denied{Invalid login or password, 3s}", err)
	}
}

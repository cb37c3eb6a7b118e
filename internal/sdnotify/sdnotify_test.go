package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSystemd listens where systemd would and returns the socket's name.
func fakeSystemd(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	sd := fakeSystemd(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	sent, err := Notify(MainPID(os.Getpid()), Ready, Status("serving\non 2 listeners"))
	if err != nil || !sent {
		t.Fatalf("Notify: %v, %v", sent, err)
	}
	want := "MAINPID=" + itoa(os.Getpid()) + "\nREADY=1\nSTATUS=serving on 2 listeners\n"
	if got := receive(t, sd); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestNotifyAbstract(t *testing.T) {
	name := "pipegate-sdnotify-test-" + itoa(os.Getpid())
	sd := fakeSystemd(t, "\x00"+name)
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	if _, err := Notify(Reloading); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, sd); got != "RELOADING=1\n" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET: %v, %v; want false, nil", sent, err)
	}
}

func TestSendErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		socket string
		states []string
		want   string
	}{
		{filepath.Join(dir, "absent"), []string{Ready}, "connecting to"},
		{"relative/path", []string{Ready}, "want a path"},
		{filepath.Join(dir, "absent"), nil, "no state"},
		{filepath.Join(dir, "absent"), []string{"READY=1\nX=2"}, "one VARIABLE=VALUE line"},
		{filepath.Join(dir, "absent"), []string{"READY"}, "one VARIABLE=VALUE line"},
	} {
		err := Send(tc.socket, tc.states...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Send(%q, %q) = %v; want an error with %q", tc.socket, tc.states, err, tc.want)
		}
	}
}

func itoa(i int) string { return strings.TrimPrefix(MainPID(i), "MAINPID=") }

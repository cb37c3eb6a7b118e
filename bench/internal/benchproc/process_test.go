package benchproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/freeport"
)

// helperServer is a Server that runs this test binary as mode (see
// helper), awaited on a fresh address: the one mode "listen" listens on.
func helperServer(t *testing.T, mode string) (Server, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	if mode == "listen" {
		mode += " " + addr
	}
	t.Setenv(helperEnv, mode) // inherited by the child
	return Server{Name: "helper", Argv: []string{exe}, Log: filepath.Join(t.TempDir(), "helper.log"), Listen: []string{addr}}, addr
}

// wantError fails t unless err holds every one of wants.
func wantError(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one with %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestStartListensAndStops(t *testing.T) {
	s, _ := helperServer(t, "listen")
	p, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := GroupRSS(p.Pgid())
	if err != nil || rss <= 0 {
		t.Errorf("GroupRSS = %d, %v; want > 0", rss, err)
	}
	if _, err := GroupCPU(p.Pgid()); err != nil {
		t.Errorf("GroupCPU: %v", err)
	}
	p.Stop()
	p.Stop() // a second Stop does nothing
	_, err = GroupRSS(p.Pgid())
	wantError(t, err, "no process in group")
	_, err = GroupCPU(p.Pgid())
	wantError(t, err, "no process in group")
}

func TestStartExitsEarly(t *testing.T) {
	s, addr := helperServer(t, "fail")
	_, err := Start(context.Background(), s)
	wantError(t, err, "helper exited before listening on "+addr, "bad config, line 3")
}

func TestStartNeverListens(t *testing.T) {
	s, addr := helperServer(t, "mute")
	s.Wait = 100 * time.Millisecond
	s.ErrorLog = filepath.Join(t.TempDir(), "error.log")
	if err := os.WriteFile(s.ErrorLog, []byte("from the error log"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), s)
	wantError(t, err, "helper: nothing listens on "+addr, "not within 100ms", "from the error log")
}

func TestStartCancelled(t *testing.T) {
	s, _ := helperServer(t, "mute")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Start(ctx, s)
	wantError(t, err, "context canceled")
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []Server{
		{Name: "none", Log: filepath.Join(dir, "none.log")},
		{Name: "nolog", Argv: []string{"true"}, Log: filepath.Join(dir, "missing", "x.log")},
		{Name: "nobin", Argv: []string{filepath.Join(dir, "no-such-binary")}, Log: filepath.Join(dir, "nobin.log")},
	} {
		_, err := Start(context.Background(), s)
		wantError(t, err, "start "+s.Name+": ")
	}
}

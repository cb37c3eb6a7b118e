//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/demo"
)

// demoMailConfig starts the demo's mail hosts (shut down at the test's
// end) and writes, in a new folder, a `pipegate mail` config with one
// plain IMAP listener routing every account to the first host, JSON logs
// and the extra top-level lines.
func demoMailConfig(t *testing.T, extra string) (d *demo.Demo, dir, config string) {
	t.Helper()
	d, err := demo.Start(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	dir = t.TempDir()
	config = filepath.Join(dir, "mail.yaml")
	writeTestFile(t, filepath.Join(dir, "routes.yaml"), fmt.Sprintf("default: imap://%s\n", d.Backends[0].IMAP))
	writeTestFile(t, config, "listen:\n  - addr: 127.0.0.1:0\n    protocol: imap\nroutes_file: routes.yaml\nallow_plaintext_auth: true\nlog:\n  format: json\n"+extra)
	return d, dir, config
}

// TestUpgradeMailRepeat: ten upgrades of `pipegate mail` in a row, under
// a load of IMAP logins, refuse no login, move three logged-in sessions
// ten times (each logged once, at its end), and leave the survivor with
// no more sockets or goroutines than the first new process had.
func TestUpgradeMailRepeat(t *testing.T) {
	fwdLeakCheck(t)
	d, dir, config := demoMailConfig(t, "max_prelogin_connections_per_ip: 0\nmetrics_addr: 127.0.0.1:0\ndrain_timeout: 10s\n")
	ch := upStart(t, fwdBin, []string{"mail", "--config", config, "--upgrade-dir", filepath.Join(dir, "run")}, "mail: listening", 1)
	addr := ch.waitLog(t, "mail: listening", 1)["addr"].(string)
	metrics := ch.waitLog(t, "mail: metrics listening", 1)["addr"].(string)
	alice := d.Accounts[0]
	login := func() (*imapclient.Client, error) {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			return nil, err
		}
		if err := c.Login(alice.User, alice.Password).Wait(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	loginLogout := func(int, int) error {
		c, err := login()
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Logout().Wait()
	}

	// First generation after an upgrade, idle after one session: the
	// baseline.
	pid := ch.upgradeTo(t, ch.cmd.Process.Pid, 1)
	if code := ch.firstCode(t); code != 0 {
		t.Fatalf("first process exit code %d", code)
	}
	if err := loginLogout(0, 0); err != nil {
		t.Fatal(err)
	}
	ch.waitLog(t, "imap session", 1)
	baseS := sockets(t, pid)
	baseG := goroutines(t, metrics)

	var long []*imapclient.Client
	for range 3 {
		c, err := login()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		long = append(long, c)
	}
	h := startHammerFunc(2, loginLogout)
	const rounds = 10
	for i := 2; i <= rounds; i++ {
		before := h.ok.Load()
		eventually(t, "logins before the upgrade", func() bool { return h.ok.Load() >= before+3 })
		var old int
		old, pid = pid, ch.upgradeTo(t, pid, i)
		eventually(t, fmt.Sprintf("old process %d exits after the hand-over", old), func() bool { return gone(old) })
		for j, c := range long {
			if err := c.Noop().Wait(); err != nil {
				t.Fatalf("round %d: session %d: NOOP: %v", i, j, err)
			}
		}
	}
	h.finish(t, 3*rounds)
	for _, c := range long {
		if err := c.Logout().Wait(); err != nil {
			t.Error(err)
		}
	}
	// One line per session: the warm-up's, the hammer's and the long ones'.
	want := 1 + int(h.ok.Load()) + len(long)
	ch.waitLog(t, "imap session", want)
	var s, g int
	eventually(t, "the survivor as idle as the first new process", func() bool {
		s, g = sockets(t, pid), goroutines(t, metrics)
		return s <= baseS && g <= baseG
	})
	if n := ch.count("imap session", ""); n != want {
		t.Errorf("%d session lines, want %d: one per session", n, want)
	}
	t.Logf("after %d upgrades: %d sockets, %d goroutines (first new process: %d, %d); %d logins", rounds, s, g, baseS, baseG, h.ok.Load())
}

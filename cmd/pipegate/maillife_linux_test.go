package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

// TestMailReloadRacingLogins: SIGHUPs (routes re-read, one of them a
// broken routes file) while clients log in without pause: no login fails,
// the broken file's error names it, and the process drains to exit 0 on
// SIGTERM (a second SIGTERM does not hurry it).
func TestMailReloadRacingLogins(t *testing.T) {
	fwdLeakCheck(t)
	d, dir, config := demoMailConfig(t, "max_prelogin_connections_per_ip: 0\ndrain_timeout: 5s\n")
	ch := upStart(t, fwdBin, []string{"mail", "--config", config, "--upgrade-dir", filepath.Join(dir, "run")}, "mail: listening", 1)
	addr := ch.waitLog(t, "mail: listening", 1)["addr"].(string)
	alice := d.Accounts[0]
	routes := filepath.Join(dir, "routes.yaml")
	good, err := os.ReadFile(routes)
	if err != nil {
		t.Fatal(err)
	}
	h := startHammerFunc(2, func(int, int) error {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Login(alice.User, alice.Password).Wait(); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		return c.Logout().Wait()
	})
	eventually(t, "logins", func() bool { return h.ok.Load() >= 10 })
	pid := ch.cmd.Process.Pid
	for i := 1; i <= 10; i++ {
		if i == 5 {
			writeTestFile(t, routes, "default: [unclosed\n")
		}
		syscall.Kill(pid, syscall.SIGHUP)
		if i == 5 {
			r := ch.waitLog(t, "mail: reload failed, keeping the previous state of what failed", 1)
			if !strings.Contains(fmt.Sprint(r["err"]), "routes.yaml") {
				t.Errorf("reload error does not name the routes file: %v", r["err"])
			}
			writeTestFile(t, routes, string(good))
			continue
		}
		ch.waitLog(t, "mail: routes reloaded", i-min(1, i/6))
		n := h.ok.Load()
		eventually(t, "logins after a reload", func() bool { return h.ok.Load() >= n+3 })
	}
	h.finish(t, 30)
	syscall.Kill(pid, syscall.SIGTERM)
	syscall.Kill(pid, syscall.SIGTERM)
	if code := ch.firstCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

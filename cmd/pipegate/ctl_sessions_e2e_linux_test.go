package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/gateway"
)

// ctlBin runs the built `pipegate ctl --admin admin args...`.
func ctlBin(t *testing.T, admin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(fwdBin, append([]string{"ctl", "--admin", admin}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("pipegate ctl %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestCtlSessionsKickE2E: the built `pipegate mail` in front of the
// demo's in-memory IMAP host, with alice in IDLE and carol logged in
// through go-imap's client: `pipegate ctl sessions` lists both (client,
// backend), `pipegate ctl kick alice@a.test` ends alice's session with
// "* BYE" and reports it, the session is logged once as kicked by the
// administrator, and carol's session goes on.
func TestCtlSessionsKickE2E(t *testing.T) {
	fwdLeakCheck(t)
	d, dir, config := demoMailConfig(t, "metrics_addr: 127.0.0.1:0\ndrain_timeout: 5s\n")
	ch := upStart(t, fwdBin, []string{"mail", "--config", config, "--upgrade-dir", filepath.Join(dir, "run")}, "mail: listening", 1)
	addr := ch.waitLog(t, "mail: listening", 1)["addr"].(string)
	admin := ch.waitLog(t, "mail: metrics listening", 1)["addr"].(string)
	alice, carol := d.Accounts[0], d.Accounts[1]
	if alice.User != "alice@a.test" || carol.User != "carol@a.test" {
		t.Fatalf("demo accounts changed: %+v", d.Accounts)
	}

	var aliceWire syncBuffer // what alice's client read and wrote
	ac, err := imapclient.DialInsecure(addr, &imapclient.Options{DebugWriter: &aliceWire})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if err := ac.Login(alice.User, alice.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := ac.Idle() // returns once the backend said "+ idling"
	if err != nil {
		t.Fatal(err)
	}
	cc, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.Login(carol.User, carol.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := cc.Noop().Wait(); err != nil {
		t.Fatal(err)
	}

	// A session is listed from just after its pipe started: no event.
	var list []gateway.SessionInfo
	eventually(t, "both sessions listed", func() bool {
		var out bytes.Buffer
		if run(context.Background(), []string{"ctl", "--admin", admin, "--json", "sessions"}, &out, &out) != 0 {
			t.Fatalf("ctl --json sessions: %s", out.String())
		}
		list = nil
		if err := json.Unmarshal(out.Bytes(), &list); err != nil {
			t.Fatalf("ctl --json sessions: %q: %v", out.String(), err)
		}
		return len(list) == 2
	})
	if list[0].Account != alice.User || list[1].Account != carol.User || list[0].Protocol != "imap" ||
		list[0].Backend != d.Backends[0].IMAP || list[0].Since.IsZero() || list[0].ID == "" {
		t.Errorf("sessions %+v; want alice's then carol's, to %s", list, d.Backends[0].IMAP)
	}

	code, out, errs := ctlBin(t, admin, "sessions")
	for _, w := range []string{"ACCOUNT", "BACKEND", alice.User, carol.User, d.Backends[0].IMAP, list[0].ID, list[1].ID, "2 session(s)\n"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("ctl sessions: exit %d, stderr %q, printed\n%s\nwithout %q", code, errs, out, w)
		}
	}
	t.Logf("pipegate ctl sessions\n%s", out)
	if code, out, _ := ctlBin(t, admin, "sessions", alice.User); code != 0 || strings.Contains(out, carol.User) || !strings.Contains(out, "1 session(s) of "+alice.User) {
		t.Errorf("ctl sessions %s: exit %d:\n%s", alice.User, code, out)
	}

	code, out, errs = ctlBin(t, admin, "kick", alice.User)
	if code != 0 || out != "kicked 1 session(s) of "+alice.User+"\n" || errs != "" {
		t.Fatalf("ctl kick: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	select {
	case <-ac.Closed():
	case <-time.After(fwdWait):
		t.Fatal("alice's connection still open after the kick")
	}
	if err := idle.Wait(); err == nil {
		t.Error("alice's IDLE ended without error after the kick")
	}
	if bye := "* BYE " + gateway.TextKicked + "\r\n"; !strings.HasSuffix(aliceWire.String(), bye) {
		t.Errorf("alice's client did not read %q last:\n%s", bye, aliceWire.String())
	}
	r := ch.waitFor(t, "alice's session line", func(recs []map[string]any) map[string]any {
		for _, r := range recs {
			if r["msg"] == "imap session" && r["account"] == alice.User {
				return r
			}
		}
		return nil
	})
	if r["reason"] != "kicked: by the administrator" || r["session"] != list[0].ID || r["client"] != list[0].Client {
		t.Errorf("alice's session line: reason %v, session %v, client %v; want kicked, %s, %s", r["reason"], r["session"], r["client"], list[0].ID, list[0].Client)
	}
	if r := ch.waitLog(t, "mail: admin: sessions kicked", 1); r["account"] != alice.User || r["sessions"] != 1.0 {
		t.Errorf("kick's log line: %v", r)
	}

	if err := cc.Noop().Wait(); err != nil {
		t.Errorf("carol's session after alice's kick: %v", err)
	}
	if code, out, _ := ctlBin(t, admin, "sessions"); code != 0 || strings.Contains(out, alice.User) || !strings.Contains(out, "1 session(s)\n") {
		t.Errorf("ctl sessions after the kick: exit %d:\n%s", code, out)
	}
	if code, out, _ := ctlBin(t, admin, "kick", "nobody@a.test"); code != 0 || out != "kicked 0 session(s) of nobody@a.test\n" {
		t.Errorf("ctl kick nobody: exit %d, %q", code, out)
	}
	if code, out, errs := ctlBin(t, admin, "kick"); code != 2 || out != "" || !strings.Contains(errs, "usage: pipegate ctl kick ACCOUNT") {
		t.Errorf("ctl kick without account: exit %d, %q, %q", code, out, errs)
	}
	if n := ch.count("imap session", ""); n != 1 {
		t.Errorf("%d imap session lines while carol's goes on, want 1 (alice's, once)", n)
	}
	if err := cc.Logout().Wait(); err != nil {
		t.Error(err)
	}
}

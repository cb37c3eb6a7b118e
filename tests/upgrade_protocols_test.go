package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// Binary upgrades of `pipegate mail` (docs/upgrade.md) for the sessions
// upgrade_test.go does not cover: POP3, ManageSieve and submission
// sessions in front of real Dovecot, and an IMAP session on a pool member
// (docs/affinity.md) whose lease the new process must hold.

// TestUpgradeOtherProtocols: logged-in POP3 (plain, and TLS on both
// links), ManageSieve and submission (plain, and client TLS) sessions
// move to the new process in one upgrade; the old process exits; on the
// same connections a message is retrieved (its bytes as stored), a
// script is stored, activated, read back and listed, and a message is
// submitted and relayed; each session is logged once, with the totals of
// both processes, and Dovecot saw one login per account.
func TestUpgradeOtherProtocols(t *testing.T) {
	popp := &upgSession{proto: upgPOP3, account: "popp@a.test"}
	popt := &upgSession{proto: upgPOP3, account: "popt@a.test", clientTLS: true, backendTLS: true}
	sieve := &upgSession{proto: upgSieve, account: "sieve@a.test"}
	subp := &upgSession{proto: upgSubmission, account: "subp@a.test"}
	subt := &upgSession{proto: upgSubmission, account: "subt@a.test", clientTLS: true}
	sessions := []*upgSession{popp, popt, sieve, subp, subt}
	messages := map[string][]string{}
	for _, s := range []*upgSession{popp, popt} {
		messages[s.account] = []string{upgMessage(s.account, "before the upgrade")}
	}
	f := startUpgProtoFront(t, sessions, messages)
	m := f.m

	// Logged in, and some bytes through the old process.
	for _, s := range sessions {
		f.open(t, s)
	}
	for _, s := range []*upgSession{popp, popt} {
		want := fmt.Sprintf("+OK 1 %d", len(messages[s.account][0]))
		if l := s.c.do(s.proto, "STAT", "+OK")[0]; l != want {
			t.Fatalf("%s: STAT: %q, want %q", s, l, want)
		}
	}
	if lines := sieve.c.do(sieve.proto, "LISTSCRIPTS", "OK"); len(lines) != 1 {
		t.Fatalf("%s: LISTSCRIPTS before any PUTSCRIPT: %q", sieve, lines)
	}
	for _, s := range []*upgSession{subp, subt} {
		s.c.do(s.proto, "NOOP", "250 ")
	}

	m.upgrade(m.cmd.Process.Pid)
	newPID := f.handedOver(t, len(sessions))
	for _, s := range sessions {
		s.upgraded()
	}

	// The old process is gone: the same connections go on through the new.
	for _, s := range []*upgSession{popp, popt} {
		if got := upgRetr(s, 1); got != messages[s.account][0] {
			t.Errorf("%s: RETR 1 after the upgrade: %d bytes %q, want the %d stored", s, len(got), got, len(messages[s.account][0]))
		}
	}
	upgSieveScript(t, f, sieve)
	for _, s := range []*upgSession{subp, subt} {
		upgSubmit(t, f, s)
	}
	for _, s := range sessions {
		s.end()
		s.checkLine(t, m)
		if n := upgLogins(f.d, s.proto.service, s.account); n != 1 {
			t.Errorf("%s: Dovecot logged %d %s logins through pipegate, want 1 (no reconnect)", s, n, s.proto.service)
		}
	}

	m.stop(newPID)
	m.waitRecord("mail: stopped", 2) // the old process's, then the new one's
	for _, s := range sessions {
		if n := len(m.protocolSessionRecords(s.proto.name, s.account, "")); n != 1 {
			t.Errorf("%s: %d session lines in the end, want 1", s, n)
		}
	}
}

// upgRetr RETRieves message n of a POP3 session and returns it as sent,
// with its CRLFs and without the dot-stuffing.
func upgRetr(s *upgSession, n int) string {
	c := s.c
	c.t.Helper()
	c.send("RETR %d", n)
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("%s: RETR %d: %q", s, n, l)
	}
	var b strings.Builder
	for range 100000 {
		l := c.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(l, ".") + "\r\n")
	}
	c.t.Fatalf("%s: RETR %d: no end in 100000 lines", s, n)
	return ""
}

// upgSieveScript stores a script over a ManageSieve session, activates
// it, reads it back and lists it; Dovecot keeps it in the account's home.
func upgSieveScript(t *testing.T, f *upgProtoFront, s *upgSession) {
	t.Helper()
	c, p := s.c, s.proto
	const script = "require \"fileinto\";\r\nif header :contains \"subject\" \"upgrade\" { fileinto \"INBOX\"; }\r\n"
	c.do(p, fmt.Sprintf("PUTSCRIPT \"upgraded\" {%d+}\r\n%s", len(script), script), "OK")
	c.do(p, `SETACTIVE "upgraded"`, "OK")
	c.send(`GETSCRIPT "upgraded"`)
	lit := literalAt.FindStringSubmatch(c.line())
	if lit == nil {
		t.Fatalf("%s: GETSCRIPT: no literal", s)
	}
	if got := c.literal(lit[1]); string(got) != script {
		t.Errorf("%s: GETSCRIPT: %q, want %q", s, got, script)
	}
	if rest := c.reply(p, "GETSCRIPT", "OK"); len(rest) != 2 || rest[0] != "" {
		t.Errorf("%s: GETSCRIPT: after the script %q", s, rest)
	}
	if lines := c.do(p, "LISTSCRIPTS", "OK"); len(lines) != 2 || lines[0] != `"upgraded" ACTIVE` {
		t.Errorf("%s: LISTSCRIPTS: %q, want the script active", s, lines)
	}
	if b, err := os.ReadFile(filepath.Join(f.d.Home(s.account), "sieve", "upgraded.sieve")); err != nil || string(b) != script {
		t.Errorf("%s: the script in Dovecot's store: %q, %v", s, b, err)
	}
}

// upgSubmit submits a message over a submission session and finds it at
// the SMTP sink Dovecot relays to.
func upgSubmit(t *testing.T, f *upgProtoFront, s *upgSession) {
	t.Helper()
	c, p := s.c, s.proto
	const rcpt = "rcpt@example.net"
	msg := upgMessage(rcpt, "submitted after the upgrade by "+s.account)
	c.do(p, "MAIL FROM:<"+s.account+">", "250 ")
	c.do(p, "RCPT TO:<"+rcpt+">", "250 ")
	c.do(p, "DATA", "354 ")
	c.do(p, msg+".", "250 ")
	got := f.d.Sink.WaitMessage(t, func(sm testenv.SinkMessage) bool { return sm.From == s.account })
	if len(got.To) != 1 || got.To[0] != rcpt || !bytes.HasSuffix(got.Data, []byte(msg)) {
		t.Errorf("%s: relayed %s -> %v:\n%s\nwant the message submitted:\n%s", s, got.From, got.To, got.Data, msg)
	}
}

// TestUpgradePoolSession: an IMAP session on a member of a pool (two
// Dovecots on shared storage, Redis) moves to the new process, goes on
// on the same connection (a message delivered after the upgrade is
// announced and fetched), and its lease moves with it: the user stays on
// the member, with one session, held by the new process's instance, and
// none once it logs out.
func TestUpgradePoolSession(t *testing.T) {
	c := startAffinity(t, affOptions{members: 2, users: 1})
	user := c.users[0]
	in := &affInstance{imap: testenv.FreeAddr(t), http: testenv.FreeAddr(t)}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "routes.yaml"), "routes:\n  - domain: a.test\n    backend: pool:shared\n")
	var members strings.Builder
	for _, mb := range c.members {
		fmt.Fprintf(&members, "      - name: %s\n        backends: [imap://%s]\n", mb.name, mb.d.Addr)
	}
	m := startUpgMail(t, dir, upgConfig("listen:\n  - addr: "+in.imap+"\n", "metrics_addr: "+in.http+"\n"+c.poolsYAML(members.String(), "")), in.imap)
	c.insts = append(c.insts, in)
	c.waitJoined()

	first := upgMessage(user, "before the upgrade")
	upgDeliver(t, c.members[0].d, user, first) // shared storage: any member
	link := upgLink{account: user}
	cl := dialUpg(t, "pool "+link.String(), "127.0.0.2", in.imap, nil)
	cl.ok("a", "LOGIN %s %s", user, upgPassword(user))
	in0, out0 := cl.counts()
	cl.selectInbox(1)
	if got := cl.fetchBodies("f", "1:*"); len(got) != 1 || string(got[1]) != first {
		t.Fatalf("%s: before the upgrade: fetched %d messages, want 1 as delivered", cl.name, len(got))
	}
	oldPID := m.cmd.Process.Pid
	member := upgLeaseHeld(t, c, in, user, "", oldPID)

	m.upgrade(oldPID)
	f := &upgFront{m: m}
	newPID := f.handedOver(t, 1)
	inAfter, outAfter := cl.counts()
	upgLeaseHeld(t, c, in, user, member, newPID)

	second := upgMessage(user, "after the upgrade")
	upgDeliver(t, c.member(member).d, user, second)
	cl.exists("n", "NOOP", 2)
	cl.selectInbox(2)
	if got := cl.fetchBodies("g", "1:*"); len(got) != 2 || string(got[1]) != first || string(got[2]) != second {
		t.Errorf("%s: after the upgrade: fetched %d messages, want both as delivered", cl.name, len(got))
	}
	cl.logout()
	f.checkSessionLine(t, link, cl, in0, out0, inAfter, outAfter)
	for _, mb := range c.members {
		want := 0
		if mb.name == member {
			want = 1
		}
		if n := upgLogins(mb.d, "imap", user); n != want {
			t.Errorf("%s: member %s logged %d logins through pipegate, want %d (no reconnect, no other member)", user, mb.name, n, want)
		}
	}
	waitUntil(t, "no session of "+user+" counted after its LOGOUT", func() bool {
		ui, code, _ := c.assignment(in, user)
		return code == 200 && sumSessions(ui) == 0
	})
	if ui, _, _ := c.assignment(in, user); ui.Member != member {
		t.Errorf("%s: assigned to %q after its session ended, want %q still (until expire)", user, ui.Member, member)
	}

	m.stop(newPID)
	m.waitRecord("mail: stopped", 2)
}

// upgLeaseHeld checks by in's admin API that user is assigned (to member,
// unless "") with one session, counted for the pool instance of process
// pid (its id is host-PID-random.generation), and returns the member.
func upgLeaseHeld(t *testing.T, c *affCluster, in *affInstance, user, member string, pid int) string {
	t.Helper()
	ui, code, body := c.assignment(in, user)
	if code != 200 {
		t.Fatalf("GET /affinity for %s: %d %s", user, code, body)
	}
	if ui.Member == "" || (member != "" && ui.Member != member) || ui.Moving {
		t.Errorf("%s: assigned to %q (moving %v), want %q", user, ui.Member, ui.Moving, member)
	}
	holder := regexp.MustCompile(fmt.Sprintf(`-%d-[0-9a-f]+\.\d+$`, pid))
	for inst, n := range ui.Sessions {
		if n != 0 && (n != 1 || !holder.MatchString(inst)) {
			t.Errorf("%s: %d sessions counted for instance %s, want 1 only for process %d's", user, n, inst, pid)
		}
	}
	if n := sumSessions(ui); n != 1 {
		t.Errorf("%s: %d sessions counted (%v), want 1", user, n, ui.Sessions)
	}
	return ui.Member
}

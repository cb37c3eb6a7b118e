package tests

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// Binary upgrades of `pipegate mail` in front of real Dovecot
// (docs/upgrade.md): on SIGUSR2 the piped sessions move to the new
// process with their TLS state and the bytes in flight, the old process
// exits, and each session is logged once, by the new process, with the
// totals of both; a new binary that fails changes nothing.

// upgLink is how one session reaches Dovecot through pipegate.
type upgLink struct {
	account    string
	clientTLS  bool                            // pipegate's implicit-TLS listener, else its plain one
	backend    func(d *testenv.Dovecot) string // the route's backend URL
	backendTLS bool
}

var (
	upgPlainBackend = func(d *testenv.Dovecot) string { return "imap://" + d.Addr }
	upgImaps        = func(d *testenv.Dovecot) string { return "imaps://" + d.TLSAddr + "?server_name=imap.backend.test" }
	upgStartTLS     = func(d *testenv.Dovecot) string {
		return "imap+starttls://" + d.Addr + "?server_name=imap.backend.test"
	}
)

func (l upgLink) String() string {
	side := func(tls bool) string {
		if tls {
			return "TLS"
		}
		return "plain"
	}
	return fmt.Sprintf("%s (client %s, backend %s)", l.account, side(l.clientTLS), side(l.backendTLS))
}

// upgFront is Dovecot and `pipegate mail` in front of it, with a plain
// and an implicit-TLS IMAP listener and a route per link.
type upgFront struct {
	d                  *testenv.Dovecot
	m                  *upgMail
	dir                string
	config             string // the config text written at the start
	plainAddr, tlsAddr string
	clientTLS          *tls.Config
}

// startUpgFront starts Dovecot with an account per link (holding
// messages[account]) and pipegate mail routing each account by its link.
func startUpgFront(t *testing.T, links []upgLink, messages map[string][]string) *upgFront {
	t.Helper()
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "imap.backend.test")
	users := map[string]string{}
	for _, l := range links {
		users[l.account] = upgPassword(l.account)
	}
	f := &upgFront{dir: t.TempDir(), plainAddr: testenv.FreeAddr(t), tlsAddr: testenv.FreeAddr(t),
		clientTLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	// pipegate dials from 127.0.0.1 and passes its clients' address by ID.
	f.d = testenv.StartDovecot(t, testenv.DovecotOptions{Users: users, Messages: messages,
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key})
	var routes strings.Builder
	routes.WriteString("routes:\n")
	for _, l := range links {
		fmt.Fprintf(&routes, "  - account: %s\n    backend: %s\n", l.account, l.backend(f.d))
	}
	writeFile(t, filepath.Join(f.dir, "routes.yaml"), routes.String())
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	f.config = fmt.Sprintf(`listen:
  - addr: %s
    protocol: imap
  - addr: %s
    protocol: imap
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
allow_plaintext_auth: true
drain_timeout: 20s
log:
  format: json
  level: debug
`, f.plainAddr, f.tlsAddr, pcert, pkey, ca.CertFile(t))
	f.m = startUpgMail(t, f.dir, f.config, f.plainAddr, f.tlsAddr)
	return f
}

// dial connects a client of link to pipegate.
func (f *upgFront) dial(t *testing.T, l upgLink) *upgClient {
	t.Helper()
	if l.clientTLS {
		return dialUpg(t, l.String(), "127.0.0.2", f.tlsAddr, f.clientTLS)
	}
	return dialUpg(t, l.String(), "127.0.0.2", f.plainAddr, nil)
}

// upgIdler is a client of a link in IDLE, with its byte counts since
// LOGIN succeeded.
type upgIdler struct {
	link      upgLink
	c         *upgClient
	in0, out0 int64 // counts when LOGIN succeeded
	inAfter   int64 // counts when the old process had exited
	messages  []string
}

// startIdle logs l's account in through pipegate, FETCHes its message
// (bytes before the upgrade) and enters IDLE.
func (f *upgFront) startIdle(t *testing.T, l upgLink, messages []string) *upgIdler {
	t.Helper()
	c := f.dial(t, l)
	i := &upgIdler{link: l, c: c, messages: messages}
	c.ok("a", "LOGIN %s %s", l.account, upgPassword(l.account))
	i.in0, i.out0 = c.counts()
	c.send("s SELECT INBOX")
	if l := c.expect("s "); !strings.HasPrefix(l, "s OK") {
		t.Fatalf("%s: SELECT: %s", c.name, l)
	}
	got := c.fetchBodies("f", "1:*")
	if len(got) != len(messages) || !bytes.Equal(got[1], []byte(messages[0])) {
		t.Fatalf("%s: before the upgrade: fetched %d messages, want %d as written", c.name, len(got), len(messages))
	}
	c.send("i IDLE")
	c.expect("+")
	return i
}

// finish waits in IDLE for the EXISTS of every message delivered, leaves
// IDLE, FETCHes the new messages, compares them and logs out.
func (i *upgIdler) finish(t *testing.T, delivered []string) {
	t.Helper()
	c := i.c
	total := len(i.messages) + len(delivered)
	c.expect(fmt.Sprintf("* %d EXISTS", total))
	c.send("DONE")
	if l := c.expect("i "); !strings.HasPrefix(l, "i OK") {
		t.Fatalf("%s: IDLE ended with %s", c.name, l)
	}
	got := c.fetchBodies("g", fmt.Sprintf("%d:%d", len(i.messages)+1, total))
	for k, msg := range delivered {
		if b := got[len(i.messages)+1+k]; !bytes.Equal(b, []byte(msg)) {
			t.Errorf("%s: message %d: fetched %d bytes, delivered %d; equal: false", c.name, len(i.messages)+1+k, len(b), len(msg))
		}
	}
	c.logout()
}

// checkSessionLine checks the one IMAP session line of l's client c (see
// checkSessionRecord).
func (f *upgFront) checkSessionLine(t *testing.T, l upgLink, c *upgClient, in0, out0, inAfter, outAfter int64) {
	t.Helper()
	checkSessionRecord(t, f.m, "imap", l, c, in0, out0, inAfter, outAfter)
}

// checkSessionRecord checks the one protocol session line of l's client c
// (found by its address: the same connection throughout): its links, and
// byte totals that are everything the client exchanged after its login,
// in both processes, not only what passed after the upgrade (in0, out0:
// c's counts when its login succeeded; inAfter, outAfter: once the old
// process had gone).
func checkSessionRecord(t *testing.T, m *upgMail, protocol string, l upgLink, c *upgClient, in0, out0, inAfter, outAfter int64) {
	t.Helper()
	name, client := protocol+" "+l.String(), c.tcp.LocalAddr().String()
	m.waitMatch("the session line of "+name, func(r map[string]any) bool {
		return r["msg"] == protocol+" session" && r["account"] == l.account && r["client"] == client
	}, 1)
	recs := m.protocolSessionRecords(protocol, l.account, client)
	if len(recs) != 1 {
		t.Fatalf("%s: %d session lines, want 1: %v", name, len(recs), recs)
	}
	rec := recs[0]
	if rec["client_tls"] != l.clientTLS || rec["backend_tls"] != l.backendTLS {
		t.Errorf("%s: logged client_tls=%v backend_tls=%v", name, rec["client_tls"], rec["backend_tls"])
	}
	in, out := c.counts()
	toClient, toBackend := upgNum(t, rec, "bytes_to_client"), upgNum(t, rec, "bytes_to_backend")
	t.Logf("%s: bytes_to_client %d (the client read %d after its login, %d after the upgrade); bytes_to_backend %d (written %d, %d)",
		name, toClient, in-in0, in-inAfter, toBackend, out-out0, out-outAfter)
	// The pipe begins after the login's answer: its totals are what the
	// client exchanged since, in both processes.
	if toClient != in-in0 || toClient <= in-inAfter {
		t.Errorf("%s: bytes_to_client %d, but the client read %d after its login (%d of them after the upgrade)", name, toClient, in-in0, in-inAfter)
	}
	if toBackend != out-out0 || toBackend <= out-outAfter {
		t.Errorf("%s: bytes_to_backend %d, but the client wrote %d after its login (%d of them after the upgrade)", name, toBackend, out-out0, out-outAfter)
	}
}

// checkOneLogin checks that Dovecot saw one login of account through
// pipegate (from the client's address, 127.0.0.2, passed by ID): the
// session was never reconnected. Deliveries log in from 127.0.0.3.
func (f *upgFront) checkOneLogin(t *testing.T, account string) {
	t.Helper()
	if n := upgLogins(f.d, "imap", account); n != 1 {
		t.Errorf("%s: Dovecot logged %d logins through pipegate, want 1 (no reconnect)", account, n)
	}
}

// handedOver waits for the upgrade begun by SIGUSR2 to the first
// generation to move sessions sessions and for the first generation to
// exit 0; it returns the new process's pid.
func (f *upgFront) handedOver(t *testing.T, sessions int) int {
	t.Helper()
	m := f.m
	newPID := int(upgNum(t, m.waitRecord("upgrade: new process serves", 1), "pid"))
	sent := m.waitRecord("mail: upgrade: sessions handed over", 1)
	if upgNum(t, sent, "sent") != int64(sessions) || upgNum(t, sent, "stayed") != 0 || sent["err"] != nil {
		t.Errorf("the old process handed over %v sessions (%v stayed, err %v), want %d", sent["sent"], sent["stayed"], sent["err"], sessions)
	}
	taken := m.waitRecord("mail: upgrade: sessions taken over", 1)
	if upgNum(t, taken, "adopted") != int64(sessions) || taken["err"] != nil {
		t.Errorf("the new process adopted %v sessions (err %v), want %d", taken["adopted"], taken["err"], sessions)
	}
	if code := m.firstExit(); code != 0 {
		t.Fatalf("the old process exited with %d, want 0", code)
	}
	if pid := readPIDFileT(t, m.pidFile); pid != newPID {
		t.Errorf("pid file names %d, want the new process %d", pid, newPID)
	}
	return newPID
}

func readPIDFileT(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("pid file %s: %q: %v", path, b, err)
	}
	return pid
}

// TestUpgradeMailSessions: sessions in IDLE on every combination of
// plain and TLS links, and two in the middle of a 24 MiB FETCH, move to
// the new process in one upgrade; the old process exits; messages
// delivered during and after the upgrade are announced through the new
// process on the same connections; the large bodies arrive intact; each
// session is logged once, by the new process, with the totals of both.
func TestUpgradeMailSessions(t *testing.T) {
	idle := []upgLink{
		{account: "pp@a.test", backend: upgPlainBackend},
		{account: "tp@a.test", clientTLS: true, backend: upgPlainBackend},
		{account: "pt@a.test", backend: upgImaps, backendTLS: true},
		{account: "tt@a.test", clientTLS: true, backend: upgStartTLS, backendTLS: true},
	}
	big := []upgLink{
		{account: "bigp@a.test", backend: upgPlainBackend},
		{account: "bigt@a.test", clientTLS: true, backend: upgImaps, backendTLS: true},
	}
	bigMsg := upgBigMessage(24 << 20)
	bigSum := sha256.Sum256([]byte(bigMsg))
	messages := map[string][]string{}
	for _, l := range idle {
		messages[l.account] = []string{upgMessage(l.account, "before the upgrade") + strings.Repeat("x", 16<<10) + "\r\n"}
	}
	for _, l := range big {
		messages[l.account] = []string{bigMsg}
	}
	f := startUpgFront(t, append(append([]upgLink(nil), idle...), big...), messages)
	m := f.m

	var idlers []*upgIdler
	for _, l := range idle {
		idlers = append(idlers, f.startIdle(t, l, messages[l.account]))
	}
	// The large FETCHes: the clients read 1 MiB, then stop reading until
	// the old process has gone; the rest is in the sockets' buffers and
	// pipegate's when the sessions move.
	type bigFetch struct {
		link      upgLink
		c         *upgClient
		size      int
		head      []byte
		in0, out0 int64
	}
	var fetches []*bigFetch
	for _, l := range big {
		c := f.dial(t, l)
		c.ok("a", "LOGIN %s %s", l.account, upgPassword(l.account))
		bf := &bigFetch{link: l, c: c}
		bf.in0, bf.out0 = c.counts()
		c.ok("s", "SELECT INBOX")
		c.send("f FETCH 1 BODY.PEEK[]")
		line := c.expect("* 1 FETCH")
		sm := fetchStart.FindStringSubmatch(line)
		if sm == nil {
			t.Fatalf("%s: FETCH answered %q", l, line)
		}
		fmt.Sscan(sm[2], &bf.size)
		if bf.size != len(bigMsg) {
			t.Fatalf("%s: FETCH announces %d bytes, the message has %d", l, bf.size, len(bigMsg))
		}
		bf.head = c.literal("1048576")
		fetches = append(fetches, bf)
	}

	m.upgrade(m.cmd.Process.Pid)
	// A message delivered while the upgrade runs.
	during := map[string]string{}
	for _, l := range idle {
		during[l.account] = upgMessage(l.account, "during the upgrade")
		upgDeliver(t, f.d, l.account, during[l.account])
	}
	newPID := f.handedOver(t, len(idle)+len(big))

	// The old process is gone: what the clients get now passes the new one.
	for _, i := range idlers {
		i.inAfter, _ = i.c.counts()
	}
	for _, i := range idlers {
		after := upgMessage(i.link.account, "after the upgrade")
		upgDeliver(t, f.d, i.link.account, after)
		_, outAfter := i.c.counts()
		i.finish(t, []string{during[i.link.account], after})
		f.checkSessionLine(t, i.link, i.c, i.in0, i.out0, i.inAfter, outAfter)
		f.checkOneLogin(t, i.link.account)
	}
	for _, bf := range fetches {
		c := bf.c
		inAfter, outAfter := c.counts()
		h := sha256.New()
		h.Write(bf.head)
		c.c.SetDeadline(time.Now().Add(upgWait))
		if n, err := io.CopyN(h, c.r, int64(bf.size-len(bf.head))); err != nil {
			t.Fatalf("%s: the rest of the body after the upgrade: %d bytes, %v", bf.link, len(bf.head)+int(n), err)
		}
		if sum := h.Sum(nil); !bytes.Equal(sum, bigSum[:]) {
			t.Errorf("%s: the body fetched across the upgrade differs from the message (sha256 %x, want %x)", bf.link, sum, bigSum)
		}
		if l := c.line(); l != ")" {
			t.Errorf("%s: after the body: %q", bf.link, l)
		}
		if l := c.expect("f "); !strings.HasPrefix(l, "f OK") {
			t.Errorf("%s: FETCH ended with %s", bf.link, l)
		}
		c.logout()
		f.checkSessionLine(t, bf.link, c, bf.in0, bf.out0, inAfter, outAfter)
		f.checkOneLogin(t, bf.link.account)
	}

	m.stop(newPID)
	m.waitRecord("mail: stopped", 2) // the old process's, then the new one's
	for _, l := range append(idle, big...) {
		if n := len(m.sessionRecords(l.account, "")); n != 1 {
			t.Errorf("%s: %d session lines in the end, want 1", l, n)
		}
	}
}

// TestUpgradeMailRollback: a new binary that cannot start (a config
// error) is rolled back; the session in IDLE stays in the old process and
// gets its push, and a new login works. A later upgrade with the config
// fixed moves the same session, which goes on through the new process.
func TestUpgradeMailRollback(t *testing.T) {
	l := upgLink{account: "rb@a.test", clientTLS: true, backend: upgImaps, backendTLS: true}
	msgs := []string{upgMessage(l.account, "before the upgrade")}
	f := startUpgFront(t, []upgLink{l}, map[string][]string{l.account: msgs})
	m := f.m
	oldPID := m.cmd.Process.Pid
	i := f.startIdle(t, l, msgs)

	writeFile(t, m.config, f.config+"max_connections: -5\n")
	m.upgrade(oldPID)
	rec := m.waitRecord("upgrade failed; rolled back, this process keeps serving", 1)
	if err, _ := rec["err"].(string); !strings.Contains(err, m.config) || !strings.Contains(err, "max_connections") {
		t.Errorf("rollback reason %q does not name the config file and the field", rec["err"])
	}
	if n := len(m.records("mail: upgrade: sessions handed over")); n != 0 {
		t.Fatalf("a failed upgrade handed sessions over (%d records)", n)
	}
	first := upgMessage(l.account, "after the rollback")
	upgDeliver(t, f.d, l.account, first)
	i.c.expect(fmt.Sprintf("* %d EXISTS", len(msgs)+1))
	// A new session through the process that kept serving.
	other := f.dial(t, upgLink{account: l.account, clientTLS: true})
	other.login(l.account, len(msgs)+1)
	other.logout()
	select {
	case <-m.exited:
		t.Fatalf("the old process exited after a rolled back upgrade (code %d)", m.code)
	default:
	}
	if pid := readPIDFileT(t, m.pidFile); pid != oldPID {
		t.Errorf("pid file names %d after the rollback, want %d", pid, oldPID)
	}

	// The config fixed: the session, still in IDLE, moves.
	writeFile(t, m.config, f.config)
	m.upgrade(oldPID)
	newPID := f.handedOver(t, 1)
	i.inAfter, _ = i.c.counts()
	second := upgMessage(l.account, "after the second upgrade")
	upgDeliver(t, f.d, l.account, second)
	_, outAfter := i.c.counts()
	i.messages = msgs
	i.finish(t, []string{first, second})
	f.checkSessionLine(t, l, i.c, i.in0, i.out0, i.inAfter, outAfter)
	// Two logins through pipegate: the IDLE session's and the other one.
	re := regexp.MustCompile(`imap-login: Info: Login: user=<rb@a\.test>, .*rip=127\.0\.0\.2,`)
	if n := len(re.FindAllString(f.d.Log(), -1)); n != 2 {
		t.Errorf("Dovecot logged %d logins through pipegate, want 2 (no reconnect)", n)
	}
	m.stop(newPID)
}

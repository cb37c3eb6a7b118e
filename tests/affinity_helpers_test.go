package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/internal/testenv"
)

// Users of a pool on shared storage (docs/affinity.md): several Dovecots
// serve one mail directory (each with its own configuration, base_dir and
// log), several pipegate mail instances share a Redis, and the Dovecots'
// logs say which member served each session and when it began and ended.

// affPrefix is the pools' Redis key prefix in these tests.
const affPrefix = "t:aff:"

// affDovecotLog makes Dovecot stamp its log lines to the microsecond, so
// that sessions on two members can be ordered, and its mail processes
// log from their start (mail_debug): the imap-login process's "Login:"
// line can come after the first lines of the session it handed over,
// even after its end.
const affDovecotLog = `log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "
mail_debug = yes
`

// affOptions shape a cluster.
type affOptions struct {
	members, instances int
	spare              int    // more members, configured with weight 0: added later through the API
	users              int    // u01@a.test ... (password "pw-uNN")
	expire             string // affinity.expire; "" for 15m
	health             bool   // a health: block probing IMAP greetings
}

// affCluster is Redis, the members' Dovecots and the pipegate instances.
type affCluster struct {
	t       *testing.T
	redis   *realserver.Redis
	rdb     *redis.Client
	members []*affMember
	insts   []*affInstance
	users   []string
}

// affMember is one Dovecot of the pool; its member name is m1, m2, ...
type affMember struct {
	name     string
	d        *testenv.Dovecot
	killedAt time.Time // zero while it runs

	// the log parsed so far (sessions; test goroutine only)
	offset int
	byID   map[string]*dsession
	parsed []*dsession
}

// affInstance is one pipegate mail process.
type affInstance struct {
	p                *mailProc
	imap, pop3, http string
}

func affUser(i int) string        { return fmt.Sprintf("u%02d@a.test", i+1) }
func affPassword(u string) string { return "pw-" + strings.TrimSuffix(u, "@a.test") }

// startAffinity starts the cluster. The Redis epoch key is set in the
// past, as in a Redis that has held the pool for long: no warm-up at the
// test's start (a restart without persistence still has one).
func startAffinity(t *testing.T, o affOptions) *affCluster {
	t.Helper()
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	c := &affCluster{t: t, redis: startRedis(t)}
	c.rdb = redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	t.Cleanup(func() { c.rdb.Close() })
	if err := c.rdb.Set(context.Background(), affPrefix+"{shared}:epoch", 0, 0).Err(); err != nil {
		t.Fatalf("redis: seed the epoch: %v", err)
	}
	users := map[string]string{}
	for i := range o.users {
		u := affUser(i)
		c.users = append(c.users, u)
		users[u] = affPassword(u)
	}
	mailDir := testenv.SharedMailDir(t)
	var members strings.Builder
	for i := range o.members + o.spare {
		d := testenv.StartDovecot(t, testenv.DovecotOptions{
			Users:           users,
			TrustedNetworks: []string{"127.0.0.1/32"}, // the instances dial from there
			Protocols:       []string{testenv.IMAP, testenv.POP3},
			MailDir:         mailDir,
			Extra:           affDovecotLog,
		})
		m := &affMember{name: fmt.Sprintf("m%d", i+1), d: d}
		c.members = append(c.members, m)
		fmt.Fprintf(&members, "      - name: %s\n        backends: [imap://%s, pop3://%s]\n", m.name, d.Addr, d.POP3Addr)
		if i >= o.members {
			members.WriteString("        weight: 0\n")
		}
	}
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, "routes:\n  - domain: a.test\n    backend: pool:shared\n")
	expire := o.expire
	if expire == "" {
		expire = "15m"
	}
	health := ""
	if o.health {
		health = "    health:\n      interval: 200ms\n      timeout: 1s\n      fall: 2\n      rise: 2\n      protocol: imap\n"
	}
	for i := range o.instances {
		idir := filepath.Join(dir, fmt.Sprintf("p%d", i+1))
		mkdir(t, idir)
		c.insts = append(c.insts, startAffInstance(t, idir, func(in *affInstance) string {
			return fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    protocol: pop3
routes_file: %s
allow_plaintext_auth: true
metrics_addr: %s
auth_penalty:
  base: 1ms
  max: 5ms
auth_failure_delay: 1ms
drain_timeout: 5s
log:
  level: debug
%s`, in.imap, in.pop3, routes, in.http, c.poolsYAML(members.String(), fmt.Sprintf("      expire: %s\n      kick_delay: 2s\n      balance_factor: 0.25\n%s", expire, health)))
		}, slices.Collect(mapsValues(users))))
	}
	c.waitJoined()
	return c
}

// startAffInstance runs pipegate mail on the config that config writes
// for the instance's addresses, until its IMAP, POP3 and metrics ports
// answer. A port found free may be taken before pipegate binds it (by
// another process's outgoing connection, say): then it tries again with
// new ports, a bounded number of times.
func startAffInstance(t *testing.T, dir string, config func(*affInstance) string, secrets []string) *affInstance {
	t.Helper()
	path := filepath.Join(dir, "mail.yaml")
	for attempt := 1; ; attempt++ {
		in := &affInstance{imap: testenv.FreeAddr(t), pop3: testenv.FreeAddr(t), http: testenv.FreeAddr(t)}
		writeFile(t, path, config(in))
		if attempt == 1 {
			if out, err := exec.Command(pipegateBin, "check-config", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok (") {
				t.Fatalf("check-config: %v\n%s", err, out)
			}
		}
		p := &mailProc{t: t, logPath: filepath.Join(dir, fmt.Sprintf("pipegate-mail-%d.log", attempt)), exited: make(chan struct{}), secrets: secrets}
		logFile, err := os.Create(p.logPath)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(pipegateBin, "mail", "--config", path)
		p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
		err = p.cmd.Start()
		logFile.Close()
		if err != nil {
			t.Fatal(err)
		}
		go waitMailProc(p)
		for _, a := range []string{in.imap, in.pop3, in.http} {
			if err = p.waitListening(a); err != nil {
				break
			}
		}
		if err != nil && attempt < 3 && strings.Contains(p.log(), "address already in use") {
			<-p.exited
			continue
		}
		t.Cleanup(p.stop)
		if err != nil {
			t.Fatal(err)
		}
		in.p = p
		return in
	}
}

func mapsValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// waitJoined waits until every instance heartbeats in Redis: before its
// first beat an instance refuses logins (SessionStart fails).
// poolsYAML is the config's pools: block, one pool "shared" kept in c's
// Redis: members is its members: list, more the lines after the
// affinity's store keys (indented as its keys, or as the pool's).
func (c *affCluster) poolsYAML(members, more string) string {
	return fmt.Sprintf("pools:\n  shared:\n    members:\n%s    affinity:\n      store: redis\n      redis: {url: \"redis://%s/0\"}\n      prefix: %q\n%s", members, c.redis.Addr, affPrefix, more)
}

func (c *affCluster) waitJoined() {
	c.t.Helper()
	waitUntil(c.t, fmt.Sprintf("%d instances joined the pool in Redis", len(c.insts)), func() bool {
		n, err := c.rdb.ZCard(context.Background(), affPrefix+"{shared}:inst").Result()
		return err == nil && int(n) >= len(c.insts)
	})
}

// member returns the member named name.
func (c *affCluster) member(name string) *affMember {
	for _, m := range c.members {
		if m.name == name {
			return m
		}
	}
	c.t.Fatalf("no member %q", name)
	return nil
}

// kill stops a member's Dovecot (SIGKILL to its processes): its sessions
// end now, without a line in its log.
func (c *affCluster) kill(m *affMember) {
	c.t.Helper()
	if err := m.d.Close(); err != nil {
		c.t.Fatal(err)
	}
	m.killedAt = time.Now()
}

// --- Dovecot's log: sessions by member ---

// dsession is one mail session in a Dovecot's log.
type dsession struct {
	member, user, proto, id string
	start, end              time.Time // end zero: still open (or killed)
}

const dovecotStamp = "2006-01-02 15:04:05.000000"

var (
	// 2026-12-06 04:50:01.123456 imap-login: Info: Login: user=<u01@a.test>, method=PLAIN, rip=127.0.1.1, lip=127.0.0.1, mpid=1234, session=<AbCd>
	loginLine = regexp.MustCompile(`^(\S+ \S+) (imap|pop3)-login: Info: Login: user=<([^>]+)>.*\bmpid=(\d+).*\bsession=<([^>]+)>`)
	// 2026-12-06 04:50:02.000001 imap(u01@a.test)<1234><AbCd>: Debug: ... (any line of the mail process)
	mailLine = regexp.MustCompile(`^(\S+ \S+) (imap|pop3)\(([^)]+)\)<(\d+)><([^>]+)>: (\w+): (.*)`)
)

// isEnd reports whether a mail process's line (level, message) is its
// last: "Logged out ..." (IMAP) or "Disconnected: ..." (both).
func isEnd(level, msg string) bool {
	return level == "Info" && (strings.HasPrefix(msg, "Logged out") || strings.HasPrefix(msg, "Disconnected"))
}

// sessions parses m's log (what it added since the last call). A session
// (mail process pid and session id) starts at its first line, the login
// process's or its own, and ends at its mail process's last.
func (m *affMember) sessions(t *testing.T) []dsession {
	t.Helper()
	if m.byID == nil {
		m.byID = map[string]*dsession{}
	}
	get := func(proto, user, pid, sess string, ts time.Time) *dsession {
		id := pid + "/" + sess
		s := m.byID[id]
		if s == nil {
			s = &dsession{member: m.name, proto: proto, user: user, id: id, start: ts}
			m.byID[id] = s
			m.parsed = append(m.parsed, s)
		}
		if ts.Before(s.start) {
			s.start = ts
		}
		return s
	}
	log := m.d.Log()
	end := strings.LastIndexByte(log, '\n') + 1 // whole lines only
	for _, line := range strings.Split(log[min(m.offset, end):end], "\n") {
		if g := loginLine.FindStringSubmatch(line); g != nil {
			get(g[2], g[3], g[4], g[5], parseStamp(t, g[1]))
		} else if g := mailLine.FindStringSubmatch(line); g != nil {
			ts := parseStamp(t, g[1])
			s := get(g[2], g[3], g[4], g[5], ts)
			if isEnd(g[6], g[7]) {
				s.end = ts
			}
		}
	}
	m.offset = max(m.offset, end)
	res := make([]dsession, len(m.parsed))
	for i, s := range m.parsed {
		res[i] = *s
	}
	return res
}

func parseStamp(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.ParseInLocation(dovecotStamp, s, time.Local)
	if err != nil {
		t.Fatalf("dovecot log timestamp %q: %v (log_timestamp with %%{usecs} not in effect?)", s, err)
	}
	return ts
}

// allSessions lists the sessions of every member.
func (c *affCluster) allSessions() []dsession {
	var out []dsession
	for _, m := range c.members {
		out = append(out, m.sessions(c.t)...)
	}
	return out
}

// userSessions lists user's sessions on every member, by start.
func (c *affCluster) userSessions(user string) []dsession {
	var out []dsession
	for _, s := range c.allSessions() {
		if s.user == user {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// membersOf returns the members that logged sessions of user.
func (c *affCluster) membersOf(user string) []string {
	var out []string
	for _, s := range c.userSessions(user) {
		if !slices.Contains(out, s.member) {
			out = append(out, s.member)
		}
	}
	sort.Strings(out)
	return out
}

// logins counts the logins in the Dovecots' logs of user (all users: "").
func (c *affCluster) logins(user string) int {
	n := 0
	for _, s := range c.allSessions() {
		if user == "" || s.user == user {
			n++
		}
	}
	return n
}

// waitLogins waits until the Dovecots logged at least n logins of user.
func (c *affCluster) waitLogins(user string, n int) {
	c.t.Helper()
	waitUntil(c.t, fmt.Sprintf("%d logins of %q in the Dovecots' logs", n, user), func() bool { return c.logins(user) >= n })
}

// endOf is when s ended: its log line, the kill of its member, or never.
func (c *affCluster) endOf(s dsession) time.Time {
	if !s.end.IsZero() {
		return s.end
	}
	if k := c.member(s.member).killedAt; !k.IsZero() {
		return k
	}
	return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
}

// checkNoSplit fails the test for every user that had sessions open on
// two members at one moment, by the Dovecots' logs.
func (c *affCluster) checkNoSplit() {
	c.t.Helper()
	for _, msg := range splits(c.allSessions(), c.endOf) {
		c.t.Error(msg)
	}
}

// splits describes each pair of sessions of one user on two members that
// overlap in time; endOf gives a session's end (open ones included).
func splits(sessions []dsession, endOf func(dsession) time.Time) []string {
	byUser := map[string][]dsession{}
	for _, s := range sessions {
		byUser[s.user] = append(byUser[s.user], s)
	}
	var out []string
	for _, u := range slices.Sorted(mapsKeys(byUser)) {
		ss := byUser[u]
		for i, a := range ss {
			for _, b := range ss[i+1:] {
				if a.member != b.member && a.start.Before(endOf(b)) && b.start.Before(endOf(a)) {
					out = append(out, fmt.Sprintf("%s on two members at once: %s session %s on %s %s..%s and %s session %s on %s %s..%s",
						u, a.proto, a.id, a.member, stamp(a.start), stamp(a.end), b.proto, b.id, b.member, stamp(b.start), stamp(b.end)))
				}
			}
		}
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "(open)"
	}
	return t.Format("15:04:05.000000")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// --- clients ---

// mailConn is a raw IMAP or POP3 connection, usable from any goroutine
// (its methods return errors instead of failing the test).
type mailConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialMail connects from src and reads the greeting (want: its prefix).
func dialMail(src, addr, want string) (*mailConn, error) {
	c, err := dialFromErr(src, addr)
	if err != nil {
		return nil, err
	}
	mc := &mailConn{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(ioTimeout))
	if l, err := mc.line(); err != nil || !strings.HasPrefix(l, want) {
		c.Close()
		return nil, fmt.Errorf("greeting of %s: %q %v", addr, l, err)
	}
	return mc, nil
}

func (mc *mailConn) line() (string, error) {
	s, err := mc.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// cmd sends line and reads until a line starting with want, returning it
// (at most 100 lines).
func (mc *mailConn) cmd(line, want string) (string, error) {
	mc.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(mc.c, line+"\r\n"); err != nil {
		return "", fmt.Errorf("write %q: %w", line, err)
	}
	var seen []string
	for range 100 {
		l, err := mc.line()
		if err != nil {
			return "", fmt.Errorf("after %q: %w (read %q)", line, err, seen)
		}
		if strings.HasPrefix(l, want) {
			return l, nil
		}
		seen = append(seen, l)
	}
	return "", fmt.Errorf("after %q: no %q in 100 lines", line, want)
}

func (mc *mailConn) close() { mc.c.Close() }

// imapLogin logs user in over IMAP through addr from src. It returns the
// tagged answer, and the open session when it was OK.
func imapLogin(src, addr, user string) (*mailConn, string, error) {
	mc, err := dialMail(src, addr, "* OK")
	if err != nil {
		return nil, "", err
	}
	l, err := mc.cmd(fmt.Sprintf("a LOGIN %s %s", user, affPassword(user)), "a ")
	if err != nil || !strings.HasPrefix(l, "a OK") {
		mc.close()
		return nil, l, err
	}
	return mc, l, nil
}

// pop3Login logs user in over POP3 (USER, PASS).
func pop3Login(src, addr, user string) (*mailConn, string, error) {
	mc, err := dialMail(src, addr, "+OK")
	if err != nil {
		return nil, "", err
	}
	if l, err := mc.cmd("USER "+user, ""); err != nil || !strings.HasPrefix(l, "+OK") {
		mc.close()
		return nil, l, fmt.Errorf("USER: %q %v", l, err)
	}
	l, err := mc.cmd("PASS "+affPassword(user), "")
	if err != nil || !strings.HasPrefix(l, "+OK") {
		mc.close()
		return nil, l, err
	}
	return mc, l, nil
}

// mustIMAP logs in over IMAP or fails the test.
func mustIMAP(t *testing.T, src, addr, user string) *mailConn {
	t.Helper()
	mc, l, err := imapLogin(src, addr, user)
	if err != nil || mc == nil {
		t.Fatalf("IMAP login of %s through %s: %q %v", user, addr, l, err)
	}
	t.Cleanup(mc.close)
	return mc
}

// logout ends an IMAP session with LOGOUT.
func (mc *mailConn) logout() error {
	defer mc.close()
	_, err := mc.cmd("z LOGOUT", "z OK")
	return err
}

// quit ends a POP3 session with QUIT.
func (mc *mailConn) quit() error {
	defer mc.close()
	l, err := mc.cmd("QUIT", "")
	if err == nil && !strings.HasPrefix(l, "+OK") {
		err = fmt.Errorf("QUIT: %q", l)
	}
	return err
}

// idle selects INBOX and enters IDLE.
func (mc *mailConn) idle() error {
	if l, err := mc.cmd("s SELECT INBOX", "s "); err != nil || !strings.HasPrefix(l, "s OK") {
		return fmt.Errorf("SELECT: %q %v", l, err)
	}
	if _, err := mc.cmd("i IDLE", "+"); err != nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	return nil
}

// untilEOF reads until the connection ends (or ioTimeout) and returns
// what came.
func (mc *mailConn) untilEOF() (string, error) {
	mc.c.SetDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(mc.r)
	return string(b), err
}

// --- the admin API ---

// adminGet GETs path on in's admin listener and decodes a 200 answer into
// v; it returns the status and body.
func adminGet(t *testing.T, in *affInstance, path string, v any) (int, string) {
	t.Helper()
	return adminDo(t, http.MethodGet, "http://"+in.http+path, nil, v)
}

// adminPost POSTs body as JSON.
func adminPost(t *testing.T, in *affInstance, path string, body, v any) (int, string) {
	t.Helper()
	return adminDo(t, http.MethodPost, "http://"+in.http+path, body, v)
}

func adminDo(t *testing.T, method, u string, body, v any) (int, string) {
	t.Helper()
	code, text, err := adminCall(method, u, body, v)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return code, text
}

// adminCall is adminDo for goroutines other than the test's.
func adminCall(method, u string, body, v any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, string(b), fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// assignment asks in's admin API for user's assignment.
func (c *affCluster) assignment(in *affInstance, user string) (affinity.UserInfo, int, string) {
	c.t.Helper()
	var ui affinity.UserInfo
	code, body := adminGet(c.t, in, "/affinity?pool=shared&user="+url.QueryEscape(user), &ui)
	return ui, code, body
}

// sumSessions adds up a UserInfo's sessions of every instance.
func sumSessions(ui affinity.UserInfo) int {
	n := 0
	for _, v := range ui.Sessions {
		n += v
	}
	return n
}

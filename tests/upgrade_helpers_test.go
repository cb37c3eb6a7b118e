package tests

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/internal/testenv"
)

// Helpers of the binary-upgrade tests (upgrade_test.go): `pipegate mail`
// whose generations all write their JSON log to one pipe read here, a raw
// IMAP client that counts the bytes it exchanges, and deliveries straight
// to Dovecot.

// upgWait bounds every wait of these tests.
const upgWait = 15 * time.Second

// upgMail is `pipegate mail` started by a test, and the processes its
// upgrades start.
type upgMail struct {
	t       *testing.T
	cmd     *exec.Cmd // the first generation, our child
	config  string    // the config file
	pidFile string
	exited  chan struct{}
	code    int // the first generation's exit code, once exited is closed
	logDone chan struct{}

	mu     sync.Mutex
	recs   []map[string]any
	raw    []string
	change chan struct{} // closed and replaced at every log line
	pids   []int         // every generation seen
}

// startUpgMail writes config to dir/mail.yaml and runs `pipegate mail`
// on it with a pid file and an upgrade directory in dir, until it serves
// and listens on every address of addrs. Every generation left is killed
// in t.Cleanup, which waits for the log pipe to close.
func startUpgMail(t *testing.T, dir, config string, addrs ...string) *upgMail {
	t.Helper()
	m := &upgMail{t: t, config: filepath.Join(dir, "mail.yaml"), pidFile: filepath.Join(dir, "mail.pid"),
		exited: make(chan struct{}), logDone: make(chan struct{}), change: make(chan struct{})}
	writeFile(t, m.config, config)
	if out, err := exec.Command(pipegateBin, "check-config", m.config).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok (") {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(pipegateBin, "mail", "--config", m.config, "--pid-file", m.pidFile,
		"--upgrade-dir", filepath.Join(dir, "run"), "--upgrade-timeout", "10s")
	m.cmd.Stdout, m.cmd.Stderr = w, w // inherited by every generation
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	m.pids = []int{m.cmd.Process.Pid}
	go readUpgLog(m, r)
	go waitUpgFirst(m)
	t.Cleanup(m.cleanup)
	m.waitRecord("serving", 1) // SIGUSR2 is refused before
	listening := m.records("mail: listening")
	for _, a := range addrs {
		found := false
		for _, rec := range listening {
			found = found || rec["addr"] == a
		}
		if !found {
			t.Fatalf("pipegate mail does not listen on %s: %v", a, listening)
		}
	}
	return m
}

// cleanup kills every generation left and waits for the log's end.
func (m *upgMail) cleanup() {
	m.mu.Lock()
	pids := m.pids
	m.mu.Unlock()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-m.exited
	select {
	case <-m.logDone:
	case <-time.After(upgWait):
		m.t.Error("pipegate's log pipe still open: a generation survived SIGKILL")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := strings.Join(m.raw, "\n")
	for _, bad := range []string{"panic", "pw-"} {
		if strings.Contains(log, bad) {
			m.t.Errorf("pipegate's log holds %q", bad)
		}
	}
	if m.t.Failed() {
		m.t.Logf("pipegate mail log (every generation):\n%s", log)
	}
}

// readUpgLog reads the JSON log of every generation until the last closes
// the pipe.
func readUpgLog(m *upgMail, r io.ReadCloser) {
	defer close(m.logDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			rec = nil
		}
		m.mu.Lock()
		m.raw = append(m.raw, sc.Text())
		if rec != nil {
			m.recs = append(m.recs, rec)
			if pid, ok := rec["pid"].(float64); ok && rec["msg"] == "upgrade: new binary started" {
				m.pids = append(m.pids, int(pid))
			}
		}
		close(m.change)
		m.change = make(chan struct{})
		m.mu.Unlock()
	}
}

// waitUpgFirst reaps the first generation.
func waitUpgFirst(m *upgMail) {
	m.cmd.Wait()
	m.code = m.cmd.ProcessState.ExitCode()
	close(m.exited)
}

// records returns the log records with message msg so far.
func (m *upgMail) records(msg string) []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []map[string]any
	for _, r := range m.recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord returns the n-th (from 1) log record with message msg.
func (m *upgMail) waitRecord(msg string, n int) map[string]any {
	m.t.Helper()
	return m.waitMatch(fmt.Sprintf("log #%d %q", n, msg), func(r map[string]any) bool { return r["msg"] == msg }, n)
}

// waitMatch returns the n-th log record for which match holds.
func (m *upgMail) waitMatch(what string, match func(map[string]any) bool, n int) map[string]any {
	m.t.Helper()
	deadline := time.After(upgWait)
	for {
		m.mu.Lock()
		seen := 0
		for _, r := range m.recs {
			if match(r) {
				if seen++; seen == n {
					m.mu.Unlock()
					return r
				}
			}
		}
		change := m.change
		m.mu.Unlock()
		select {
		case <-change:
		case <-m.logDone:
			m.t.Fatalf("every generation exited before %s", what)
		case <-deadline:
			m.t.Fatalf("no %s within %v", what, upgWait)
		}
	}
}

// sessionRecords returns the "imap session" log records of account, of
// the connection from client ("": any).
func (m *upgMail) sessionRecords(account, client string) []map[string]any {
	return m.protocolSessionRecords("imap", account, client)
}

// protocolSessionRecords is sessionRecords for the sessions of protocol
// (imap, pop3, sieve, submission).
func (m *upgMail) protocolSessionRecords(protocol, account, client string) []map[string]any {
	var out []map[string]any
	for _, r := range m.records(protocol + " session") {
		if r["account"] == account && (client == "" || r["client"] == client) {
			out = append(out, r)
		}
	}
	return out
}

// upgrade sends SIGUSR2 to pid and returns without waiting.
func (m *upgMail) upgrade(pid int) {
	m.t.Helper()
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		m.t.Fatalf("SIGUSR2 to %d: %v", pid, err)
	}
}

// firstExit waits for the first generation to exit and returns its code.
func (m *upgMail) firstExit() int {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(upgWait):
		m.t.Fatalf("the first generation (pid %d) did not exit within %v", m.cmd.Process.Pid, upgWait)
	}
	return m.code
}

// stop sends SIGTERM to pid, a generation that is not our child, and
// waits until it is gone.
func (m *upgMail) stop(pid int) {
	m.t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		m.t.Fatalf("SIGTERM to %d: %v", pid, err)
	}
	waitUntil(m.t, fmt.Sprintf("pipegate mail (pid %d) exits on SIGTERM", pid), func() bool { return upgGone(pid) })
}

// upgGone reports whether pid has exited (no process, or a zombie its new
// parent has not reaped).
func upgGone(pid int) bool { return !procfs.Running(pid) }

// upgNum is a number field of a log record.
func upgNum(t *testing.T, rec map[string]any, field string) int64 {
	t.Helper()
	v, ok := rec[field].(float64)
	if !ok {
		t.Fatalf("log record without a number %q: %v", field, rec)
	}
	return int64(v)
}

// --- a raw IMAP client that counts bytes ---

// countConn counts the bytes read and written over a connection (over
// TLS: the plaintext).
type countConn struct {
	net.Conn
	in, out int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in += int64(n)
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out += int64(n)
	return n, err
}

// upgClient is one IMAP client connection, used by one goroutine.
type upgClient struct {
	t    *testing.T
	name string   // for messages: the account and the links
	tcp  net.Conn // the socket, for its address
	c    *countConn
	r    *bufio.Reader
}

// dialUpg connects from src to addr, over TLS when cfg is not nil,
// and reads the greeting.
func dialUpg(t *testing.T, name, src, addr string, cfg *tls.Config) *upgClient {
	t.Helper()
	return dialUpgGreeting(t, name, src, addr, cfg, "* OK")
}

// dialUpgGreeting is dialUpg for any protocol: it reads lines until one
// starts with greeting (the last line of a ManageSieve greeting, say).
func dialUpgGreeting(t *testing.T, name, src, addr string, cfg *tls.Config, greeting string) *upgClient {
	t.Helper()
	tcp := dialFrom(t, src, addr)
	var nc net.Conn = tcp
	if cfg != nil {
		nc = tls.Client(tcp, cfg)
	}
	c := &upgClient{t: t, name: name, tcp: tcp, c: &countConn{Conn: nc}}
	c.r = bufio.NewReaderSize(c.c, 64<<10)
	c.expect(greeting)
	return c
}

// counts returns the bytes read and written so far.
func (c *upgClient) counts() (in, out int64) { return c.c.in, c.c.out }

func (c *upgClient) send(format string, args ...any) {
	c.t.Helper()
	c.c.SetDeadline(time.Now().Add(upgWait))
	if _, err := fmt.Fprintf(c.c, format+"\r\n", args...); err != nil {
		c.t.Fatalf("%s: write %q: %v", c.name, fmt.Sprintf(format, args...), err)
	}
}

func (c *upgClient) line() string {
	c.t.Helper()
	c.c.SetDeadline(time.Now().Add(upgWait))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s: read: %v (read %q)", c.name, err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// literalAt matches a line ending in a literal's length.
var literalAt = regexp.MustCompile(`\{(\d+)\}$`)

// expect reads lines (and the literals they announce) until one starts
// with prefix and returns it; at most 1000 lines.
func (c *upgClient) expect(prefix string) string {
	c.t.Helper()
	var seen []string
	for range 1000 {
		l := c.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if m := literalAt.FindStringSubmatch(l); m != nil {
			c.literal(m[1])
		}
		if len(seen) < 20 {
			seen = append(seen, l)
		}
	}
	c.t.Fatalf("%s: no line %q in 1000 (first: %q)", c.name, prefix, seen)
	return ""
}

// literal reads a literal of size (decimal) bytes.
func (c *upgClient) literal(size string) []byte {
	c.t.Helper()
	n, err := strconv.Atoi(size)
	if err != nil || n > 64<<20 {
		c.t.Fatalf("%s: literal of %q bytes", c.name, size)
	}
	b := make([]byte, n)
	c.c.SetDeadline(time.Now().Add(upgWait))
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatalf("%s: literal of %d bytes: %v", c.name, n, err)
	}
	return b
}

// ok sends a tagged command and fails unless its answer is OK.
func (c *upgClient) ok(tag, format string, args ...any) {
	c.t.Helper()
	c.send(tag+" "+format, args...)
	if l := c.expect(tag + " "); !strings.HasPrefix(l, tag+" OK") {
		c.t.Fatalf("%s: %s: %s", c.name, fmt.Sprintf(format, args...), l)
	}
}

// fetchStart matches the start of a FETCH response carrying BODY[].
var fetchStart = regexp.MustCompile(`^\* (\d+) FETCH \(.*BODY\[\] \{(\d+)\}$`)

// fetchBodies FETCHes BODY.PEEK[] of the messages of set and returns
// them by sequence number.
func (c *upgClient) fetchBodies(tag, set string) map[int][]byte {
	c.t.Helper()
	c.send("%s FETCH %s BODY.PEEK[]", tag, set)
	out := map[int][]byte{}
	for range 1000 {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				c.t.Fatalf("%s: FETCH %s: %s", c.name, set, l)
			}
			return out
		}
		if m := fetchStart.FindStringSubmatch(l); m != nil {
			seq, _ := strconv.Atoi(m[1])
			out[seq] = c.literal(m[2])
			continue
		}
		if m := literalAt.FindStringSubmatch(l); m != nil {
			c.literal(m[1])
		}
	}
	c.t.Fatalf("%s: FETCH %s: no end in 1000 lines", c.name, set)
	return nil
}

// login logs account in and selects INBOX, which must hold n messages.
func (c *upgClient) login(account string, n int) {
	c.t.Helper()
	c.ok("a", "LOGIN %s %s", account, upgPassword(account))
	c.selectInbox(n)
}

// selectInbox selects INBOX, which must hold n messages.
func (c *upgClient) selectInbox(n int) {
	c.t.Helper()
	c.exists("s", "SELECT INBOX", n)
}

// exists sends a tagged command (SELECT, NOOP) and fails unless its
// answer is OK and announces n messages.
func (c *upgClient) exists(tag, command string, n int) {
	c.t.Helper()
	c.send("%s %s", tag, command)
	exists := false
	for range 100 {
		l := c.line()
		exists = exists || l == fmt.Sprintf("* %d EXISTS", n)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") || !exists {
				c.t.Fatalf("%s: %s: %s (%d EXISTS seen: %v)", c.name, command, l, n, exists)
			}
			return
		}
	}
	c.t.Fatalf("%s: %s: no end in 100 lines", c.name, command)
}

// logout logs out, reads until the server closes, and closes.
func (c *upgClient) logout() {
	c.t.Helper()
	c.send("z LOGOUT")
	c.expect("* BYE")
	if l := c.expect("z "); !strings.HasPrefix(l, "z OK") {
		c.t.Fatalf("%s: LOGOUT: %s", c.name, l)
	}
	c.closed("LOGOUT")
}

// closed reads until the server closes the connection after command (its
// logout), which must send nothing more, and closes it.
func (c *upgClient) closed(command string) {
	c.t.Helper()
	c.c.SetDeadline(time.Now().Add(upgWait))
	if rest, err := io.ReadAll(c.r); err != nil || len(rest) > 0 {
		c.t.Fatalf("%s: after %s: %q, %v (want the connection closed)", c.name, command, rest, err)
	}
	c.c.Close() // the server closed its side; the session ends with ours
}

func upgPassword(account string) string {
	return "pw-" + strings.TrimSuffix(account, "@a.test")
}

// upgDeliver APPENDs msg to account's INBOX over a connection of its own
// straight to Dovecot (not through pipegate), from 127.0.0.3.
func upgDeliver(t *testing.T, d *testenv.Dovecot, account, msg string) {
	t.Helper()
	c := dialUpg(t, "deliver to "+account, "127.0.0.3", d.Addr, nil)
	defer c.tcp.Close()
	c.ok("a", "LOGIN %s %s", account, upgPassword(account))
	c.send("b APPEND INBOX {%d}", len(msg))
	c.expect("+")
	c.c.SetDeadline(time.Now().Add(upgWait))
	if _, err := io.WriteString(c.c, msg+"\r\n"); err != nil {
		t.Fatalf("deliver to %s: %v", account, err)
	}
	if l := c.expect("b "); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("deliver to %s: APPEND: %s", account, l)
	}
	c.logout()
}

// upgMessage is a small message, distinct by subject.
func upgMessage(account, subject string) string {
	return fmt.Sprintf("From: sender@pipegate.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n", account, subject,
		strings.Repeat(subject+" ", 40))
}

// upgBigMessage is a message of about size bytes, CRLF lines (as Dovecot
// serves them) with varied content.
func upgBigMessage(size int) string {
	var b strings.Builder
	b.Grow(size + 200)
	b.WriteString("From: sender@pipegate.test\r\nTo: big@a.test\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%08d %s\r\n", i, strings.Repeat(strconv.FormatInt(int64(i)*2654435761%1000003, 36), 10))
	}
	return b.String()
}

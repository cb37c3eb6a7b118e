package testenv

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CyrusOptions configure a Cyrus IMAP instance (imapd, pop3d and
// timsieved under one master). The zero value starts an instance without
// users and without TLS.
type CyrusOptions struct {
	// Users maps accounts to passwords, stored in the instance's own
	// sasldb (auxprop). An account user@domain is the user "user" of the
	// virtual domain "domain" (virtdomains: userid), as Cyrus
	// installations behind a proxy usually name them.
	Users map[string]string
	// Messages maps an account to raw RFC 5322 messages delivered to its
	// INBOX (by LMTP, with Cyrus's deliver) before StartCyrus returns. The
	// INBOX is created by the first delivery or the first login
	// (autocreate).
	Messages map[string][]string
	// CertFile and KeyFile are the server certificate and key (PEM). With
	// them Cyrus offers STARTTLS (IMAP, ManageSieve) and STLS (POP3), and
	// imaps and pop3s listen (Cyrus.IMAPSAddr, Cyrus.POP3SAddr); without
	// them Cyrus has no TLS at all.
	CertFile, KeyFile string
	// RequireTLS sets allowplaintext: no, Cyrus's own default (Debian's
	// imapd.conf says yes): password logins only after TLS. On a plain
	// link IMAP then advertises LOGINDISABLED and no AUTH=PLAIN, POP3's
	// CAPA lists neither USER nor SASL PLAIN, and timsieved offers no
	// SASL mechanism.
	RequireTLS bool
	// Extra lines go at the end of imapd.conf as they are (a later line
	// overrides an earlier one of the same option).
	Extra string
}

// Cyrus is a running instance.
type Cyrus struct {
	IMAPAddr  string // IMAP, STARTTLS offered when CyrusOptions.CertFile is set
	IMAPSAddr string // imaps; empty without a certificate
	POP3Addr  string // POP3, STLS offered when CyrusOptions.CertFile is set
	POP3SAddr string // pop3s; empty without a certificate
	SieveAddr string // ManageSieve (timsieved), STARTTLS offered with a certificate

	Dir           string // holds the configuration, sasldb, spool, sockets and log
	Config        string // imapd.conf, given to every Cyrus program with -C
	ServiceConfig string // cyrus.conf, the master's services
	// LogPath is the file Cyrus's syslog lines go to (see Log), one line
	// a message as Cyrus sent it without its priority, e.g.
	//	Dec  6 22:28:57 pgcyrus-.../imap[31997]: login: localhost [127.0.0.1] alice@a.test plaintext User logged in SESSIONID=<...>
	LogPath string

	bins   cyrusBinaries
	cmd    *exec.Cmd
	exited chan struct{}
	err    error       // cmd.Wait's result once exited is closed
	syslog *syslogSink // nil when the log cannot be captured (see Logged)
	// noLog says why Cyrus's log is not captured, when it is not.
	noLog string
}

// cyrusBinaries are the programs an instance runs.
type cyrusBinaries struct {
	master, imapd, pop3d, timsieved, idled, lmtpd, deliver, saslpasswd string
}

// cyrusLibexec holds Cyrus's programs on Debian (master, the services,
// deliver); /usr/sbin has links to some with a cyr prefix.
const cyrusLibexec = "/usr/lib/cyrus/bin"

// lookCyrus finds the programs or skips the test (fails it with
// PIPEGATE_REQUIRE_REAL=1), naming the Debian packages to install.
func lookCyrus(t testing.TB) cyrusBinaries {
	t.Helper()
	b := cyrusBinaries{saslpasswd: LookPath(t, "saslpasswd2", "sasl2-bin")}
	var missing []string
	for _, p := range []struct {
		dst       *string
		name, pkg string
	}{
		{&b.master, "master", "cyrus-common"},
		{&b.timsieved, "timsieved", "cyrus-common"},
		{&b.lmtpd, "lmtpd", "cyrus-common"},
		{&b.deliver, "deliver", "cyrus-common"},
		{&b.imapd, "imapd", "cyrus-imapd"},
		{&b.idled, "idled", "cyrus-imapd"},
		{&b.pop3d, "pop3d", "cyrus-pop3d"},
	} {
		*p.dst = filepath.Join(cyrusLibexec, p.name)
		if _, err := os.Stat(*p.dst); err != nil && !strings.Contains(strings.Join(missing, " "), p.pkg) {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) > 0 {
		Missing(t, "cyrus programs not found in %s (apt-get install -y %s)", cyrusLibexec, strings.Join(missing, " "))
	}
	return b
}

// StartCyrus starts an instance for the test and stops it in t.Cleanup,
// checking then that no process of it is left. It skips the test when
// Cyrus is not installed (see LookPath) or the test does not run as root
// (the master binds as root and runs the services as the cyrus user).
//
// Cyrus logs to syslog only. StartCyrus runs the master in a private
// mount namespace whose /dev/log is a socket of the test's, so that the
// lines reach LogPath (Log, WaitLog) without a system syslog; where no
// mount namespace can be made, the instance runs without its log
// (Logged reports false and WaitLog skips the test).
func StartCyrus(t testing.TB, opts CyrusOptions) *Cyrus {
	t.Helper()
	bins := lookCyrus(t)
	if os.Geteuid() != 0 {
		Missing(t, "cyrus tests need root (the master runs its services as the cyrus user)")
	}
	c, err := newCyrus(bins, opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
		if t.Failed() {
			t.Logf("cyrus log %s:\n%s%s", c.LogPath, c.Log(), c.stderr())
		}
		if err := c.removeDir(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return c
}

// newCyrus writes the instance's files, starts its master, waits until
// every service listens, makes every user's INBOX and delivers
// opts.Messages.
func newCyrus(bins cyrusBinaries, opts CyrusOptions) (*Cyrus, error) {
	if opts.RequireTLS && opts.CertFile == "" {
		return nil, errors.New("cyrus: CyrusOptions.RequireTLS needs CertFile and KeyFile: without TLS nobody could log in")
	}
	// The services run as the cyrus user and must reach their files; the
	// sockets' paths must stay short (108 bytes), which t.TempDir's need
	// not be.
	dir, err := sharedTempDir("cyrus")
	if err != nil {
		return nil, err
	}
	c := &Cyrus{
		Dir:           dir,
		Config:        filepath.Join(dir, "imapd.conf"),
		ServiceConfig: filepath.Join(dir, "cyrus.conf"),
		LogPath:       filepath.Join(dir, "cyrus.log"),
		bins:          bins,
	}
	if err := c.start(opts); err != nil {
		c.Close()
		c.removeDir()
		return nil, err
	}
	// timsieved refuses a user whose INBOX does not exist yet ("Mailbox
	// does not exist"), and only an IMAP login or a delivery makes one
	// (autocreate): each user logs in once.
	for _, account := range sortedKeys(opts.Users) {
		if err := c.createInbox(account, opts.Users[account], opts.RequireTLS); err != nil {
			c.Close()
			c.removeDir()
			return nil, err
		}
	}
	for account, msgs := range opts.Messages {
		for i, m := range msgs {
			if err := c.Deliver(account, m); err != nil {
				c.Close()
				c.removeDir()
				return nil, fmt.Errorf("cyrus: CyrusOptions.Messages[%q][%d]: %w", account, i, err)
			}
		}
	}
	return c, nil
}

// start writes the files and runs the master; a port taken in between by
// someone else is retried with new ports, a bounded number of times.
func (c *Cyrus) start(opts CyrusOptions) error {
	if err := c.writeFiles(opts); err != nil {
		return err
	}
	var err error
	if c.syslog, err = listenSyslog(filepath.Join(c.Dir, "syslog.sock"), c.LogPath); err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := c.pickPorts(opts.CertFile != "")
		if err != nil {
			return err
		}
		if err := c.writeServices(ports); err != nil {
			return err
		}
		if err = c.run(); err == nil {
			return nil
		}
		if !strings.Contains(c.stderr()+c.Log(), "in use") {
			return err
		}
	}
	return err
}

// pickPorts sets the addresses to free loopback ports.
func (c *Cyrus) pickPorts(tls bool) (map[string]int, error) {
	ports := map[string]int{}
	fields := map[string]*string{"imap": &c.IMAPAddr, "pop3": &c.POP3Addr, "sieve": &c.SieveAddr}
	if tls {
		fields["imaps"], fields["pop3s"] = &c.IMAPSAddr, &c.POP3SAddr
	}
	for name, field := range fields {
		p, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("cyrus: %w", err)
		}
		ports[name] = p
		*field = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return ports, nil
}

// run starts the master in a private mount namespace (see privateDev)
// or, where none can be made, without its log, and waits for every
// listener.
func (c *Cyrus) run() error {
	args := []string{c.bins.master, "-C", c.Config, "-M", c.ServiceConfig, "-p", filepath.Join(c.Dir, "master.pid"), "-D"}
	if c.noLog == "" {
		err := c.startMaster(true, args)
		if err == nil {
			err = c.waitReady()
		}
		if err == nil || !errors.Is(err, errNoNamespace) {
			return err
		}
		c.noLog = err.Error()
	}
	if err := c.startMaster(false, args); err != nil {
		return err
	}
	return c.waitReady()
}

// errNoNamespace: the master could not be given its own /dev/log.
var errNoNamespace = errors.New("no private mount namespace for Cyrus's /dev/log")

// exitNoMount is the status of the wrapper shell when a mount failed.
const exitNoMount = 97

// startMaster starts the master, in a private mount namespace with the
// test's /dev/log when ns is set.
func (c *Cyrus) startMaster(ns bool, args []string) error {
	stderr, err := os.Create(filepath.Join(c.Dir, "stderr.log"))
	if err != nil {
		return fmt.Errorf("cyrus: %w", err)
	}
	defer stderr.Close()
	attr := &syscall.SysProcAttr{Setpgid: true}
	if ns {
		devDir, realDir, err := privateDev(c.Dir, c.syslog.path)
		if err != nil {
			return err
		}
		// Go makes every mount private in the new namespace before the
		// shell runs: nothing mounted here is seen outside.
		if !newMountNamespace(attr) {
			return fmt.Errorf("%w: not on this system", errNoNamespace)
		}
		script := `mount --rbind /dev "$1" && mount --bind "$2" /dev || exit ` + strconv.Itoa(exitNoMount) + `; shift 2; exec "$@"`
		args = append([]string{"/bin/sh", "-c", script, "sh", realDir, devDir}, args...)
	}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Stdout, c.cmd.Stderr = stderr, stderr
	c.cmd.SysProcAttr = attr
	if err := c.cmd.Start(); err != nil {
		if ns {
			return fmt.Errorf("%w: %v", errNoNamespace, err)
		}
		return fmt.Errorf("cyrus: start %s: %w", c.bins.master, err)
	}
	c.exited = make(chan struct{})
	go waitCyrus(c)
	return nil
}

// waitCyrus reaps the master process.
func waitCyrus(c *Cyrus) {
	c.err = c.cmd.Wait()
	close(c.exited)
}

// waitReady dials every listener until it answers, the master exits or
// 15 s pass.
func (c *Cyrus) waitReady() error {
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range c.listening() {
		network := "tcp"
		if strings.HasPrefix(addr, "/") {
			network = "unix"
		}
		switch dialUntil(network, addr, c.exited, deadline) {
		case nil:
		case errExitedFirst:
			var ee *exec.ExitError
			if errors.As(c.err, &ee) && ee.ExitCode() == exitNoMount {
				return fmt.Errorf("%w: a mount failed: %s", errNoNamespace, strings.TrimSpace(c.stderr()))
			}
			return fmt.Errorf("cyrus %s: master exited before listening on %s: %v\n%s%s", c.ServiceConfig, addr, c.err, c.Log(), c.stderr())
		default:
			c.kill()
			return fmt.Errorf("cyrus %s: nothing listens on %s after 15s\n%s%s", c.ServiceConfig, addr, c.Log(), c.stderr())
		}
	}
	return nil
}

// listening lists what the master listens on: the TCP addresses and the
// LMTP socket.
func (c *Cyrus) listening() []string {
	out := []string{c.lmtpSocket()}
	for _, a := range []string{c.IMAPAddr, c.IMAPSAddr, c.POP3Addr, c.POP3SAddr, c.SieveAddr} {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Close stops the instance: SIGTERM to the master, which ends its
// services and exits; SIGKILL to its process group if it has not within
// 5 s. It then checks that no process of the instance is left (one whose
// command line names its imapd.conf), kills any it finds and says so in
// its error.
func (c *Cyrus) Close() error {
	err := c.stop()
	if left := c.processes(); len(left) > 0 {
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		err = errors.Join(err, fmt.Errorf("cyrus %s: processes left after the master ended: %v", c.Config, left))
	}
	if c.syslog != nil {
		err = errors.Join(err, c.syslog.close())
		c.syslog = nil
	}
	return err
}

// stop ends the master and waits for it.
func (c *Cyrus) stop() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		// The services it started are in its process group; any that
		// outlived it go now.
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		return nil
	case <-time.After(5 * time.Second):
	}
	return c.kill()
}

// kill ends the master's process group at once and waits for the master.
func (c *Cyrus) kill() error {
	if err := syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cyrus %s: kill: %w", c.ServiceConfig, err)
	}
	<-c.exited
	return nil
}

// processes returns the ids of the running processes whose command line
// names this instance's imapd.conf: the master and every service (each is
// started with -C).
func (c *Cyrus) processes() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(c.Config)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(stat) {
			continue // dead, waiting for its parent
		}
		pids = append(pids, pid)
	}
	return pids
}

// isZombie reads the state field of /proc/PID/stat.
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// Processes returns the ids of the instance's running processes (the
// master and its services): none after Close.
func (c *Cyrus) Processes() []int { return c.processes() }

// Pid is the master's process id (or its wrapper shell's, until the
// wrapper has exec'd the master).
func (c *Cyrus) Pid() int { return c.cmd.Process.Pid }

// Logged reports whether Cyrus's log reaches LogPath, and if not why.
func (c *Cyrus) Logged() (bool, string) { return c.noLog == "", c.noLog }

// Log returns the log so far.
func (c *Cyrus) Log() string { return readFile(c.LogPath) }

func (c *Cyrus) stderr() string { return readFile(filepath.Join(c.Dir, "stderr.log")) }

// FindLog polls the log until a line matches the regular expression
// pattern and returns that line, or fails after limit (ErrLogTimeout).
func (c *Cyrus) FindLog(pattern string, limit time.Duration) (string, error) {
	if c.noLog != "" {
		return "", fmt.Errorf("cyrus log not captured: %s", c.noLog)
	}
	return findLog("cyrus", c.LogPath, pattern, limit)
}

// WaitLog is FindLog with a 10 s limit that fails the test. Where the
// log cannot be captured (no mount namespace) it skips the test, unless
// PIPEGATE_REQUIRE_REAL=1.
func (c *Cyrus) WaitLog(t testing.TB, pattern string) string {
	t.Helper()
	if c.noLog != "" {
		Missing(t, "cyrus log not captured: %s", c.noLog)
	}
	return waitLog(t, "cyrus", c.LogPath, pattern)
}

// Deliver delivers the raw message msg to account's INBOX by LMTP (Cyrus's
// deliver), creating the INBOX if need be.
func (c *Cyrus) Deliver(account, msg string) error {
	cmd := exec.Command(c.bins.deliver, "-C", c.Config, "-r", "sender@pipegate.test", account)
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(msg, "\r\n", "\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cyrus deliver to %s: %v: %s", account, err, bytes.TrimSpace(out))
	}
	return nil
}

// removeDir removes the instance's directory, unless the real /dev
// shows in it (a mount that leaked out of the master's namespace: then
// it is left alone, and said).
func (c *Cyrus) removeDir() error {
	if entries, err := os.ReadDir(filepath.Join(c.Dir, "realdev")); err == nil && len(entries) > 0 {
		return fmt.Errorf("cyrus: %s/realdev is not empty (a mount of /dev outside the master's namespace?): %s left in place", c.Dir, c.Dir)
	}
	return os.RemoveAll(c.Dir)
}

// createInbox logs account in to IMAP once, which makes its INBOX
// (autocreate_quota): over imaps when plaintext logins need TLS.
func (c *Cyrus) createInbox(account, pass string, overTLS bool) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if overTLS {
		conn, err = tls.DialWithDialer(d, "tcp", c.IMAPSAddr, &tls.Config{InsecureSkipVerify: true}) // the instance's own, just started
	} else {
		conn, err = d.Dial("tcp", c.IMAPAddr)
	}
	if err != nil {
		return fmt.Errorf("cyrus: login of %s to make its INBOX: %w", account, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + account + "\x00" + pass))
	if _, err := fmt.Fprintf(conn, "a AUTHENTICATE PLAIN %s\r\nb LOGOUT\r\n", ir); err != nil {
		return fmt.Errorf("cyrus: login of %s to make its INBOX: %w", account, err)
	}
	for range 100 {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("cyrus: login of %s to make its INBOX: %w", account, err)
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				return fmt.Errorf("cyrus: login of %s to make its INBOX: %s", account, strings.TrimSpace(line))
			}
			return nil
		}
	}
	return fmt.Errorf("cyrus: login of %s to make its INBOX: no answer", account)
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

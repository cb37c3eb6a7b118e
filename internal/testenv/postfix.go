package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configure a private Postfix instance. The zero value
// starts an smtpd on a free port of 127.0.0.1, without SASL or TLS, that
// trusts XCLIENT from 127.0.0.1 and relays mail from logged-in clients
// (and only them) to an in-process SMTPSink.
type PostfixOptions struct {
	// SASL turns on Postfix's SASL (smtpd_sasl_auth_enable = yes) with
	// Cyrus SASL and a sasldb of Users (mechanisms PLAIN and LOGIN).
	// Without it Postfix offers no AUTH.
	//
	// Postfix 2.9 to 3.7.11 (Debian 12), 3.8.6 and 3.9.0 ignore an
	// XCLIENT LOGIN in permit_sasl_authenticated unless SASL is on
	// (fixed in 3.7.12, 3.8.7, 3.9.1 and 3.10): a relay for a proxy that
	// names its users with XCLIENT LOGIN (nginx's xclient on,
	// pipegate's login=xclient) needs SASL on, with or without users.
	SASL bool
	// Users maps accounts (user@domain) to passwords, in the sasldb
	// (with SASL).
	Users map[string]string
	// XCLIENTHosts is smtpd_authorized_xclient_hosts: clients from there
	// may send XCLIENT. Empty means 127.0.0.1/32; "none" trusts nobody.
	XCLIENTHosts []string
	// MyNetworks is mynetworks: clients relayed without login. Empty
	// means none.
	MyNetworks []string
	// CertFile and KeyFile (PEM) turn on STARTTLS (smtpd_tls_security_level
	// = may) and a second smtpd with implicit TLS (Postfix.TLSAddr).
	CertFile, KeyFile string
	// MessageSizeLimit is message_size_limit in bytes (Postfix lists it
	// in EHLO as SIZE); 0 keeps Postfix's default (10240000).
	MessageSizeLimit int64
	// Relay is where Postfix relays everything (relayhost, "host:port").
	// When empty an SMTPSink is started (Postfix.Sink) and closed with
	// the instance.
	Relay string
	// Main is appended to main.cf as is: it overrides the settings above
	// (the last line of a parameter wins).
	Main string
}

// Postfix is a running private instance: its own config_directory,
// queue_directory and data_directory, its master started as root.
type Postfix struct {
	Addr    string // 127.0.0.1:port, plain with STARTTLS when PostfixOptions.CertFile is set
	TLSAddr string // implicit TLS (smtpd_tls_wrappermode), when PostfixOptions.CertFile is set
	// Sink receives what Postfix relays, when PostfixOptions.Relay is
	// empty; else nil.
	Sink *SMTPSink

	Dir     string // holds etc/ (main.cf, master.cf), queue/, data/, the sasldb and the log
	LogPath string // maillog_file, written by postlogd
	Version string // mail_version, e.g. 3.7.11

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result once exited is closed
}

// postfixDaemons is Debian's daemon_directory: master and the services.
const postfixDaemons = "/usr/lib/postfix/sbin"

// StartPostfix starts an instance for the test and stops it in t.Cleanup.
// It skips the test when Postfix (or, with SASL, saslpasswd2) is not
// installed (apt-get install -y postfix sasl2-bin libsasl2-modules) or
// the test does not run as root; with PIPEGATE_REQUIRE_REAL=1 it fails.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	LookPath(t, "postconf", "postfix")
	if _, err := os.Stat(filepath.Join(postfixDaemons, "master")); err != nil {
		Missing(t, "postfix master not found in %s (apt-get install -y postfix)", postfixDaemons)
	}
	if opts.SASL {
		LookPath(t, "saslpasswd2", "sasl2-bin")
	}
	if os.Geteuid() != 0 {
		Missing(t, "postfix tests need root (master binds and switches to the postfix user)")
	}
	p, err := NewPostfix(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
		if t.Failed() {
			t.Logf("postfix log %s:\n%s", p.LogPath, p.Log())
		}
		os.RemoveAll(p.Dir)
	})
	return p
}

// NewPostfix starts an instance and waits until its smtpd listeners
// accept connections. The caller must Close it and may remove p.Dir
// afterwards.
func NewPostfix(opts PostfixOptions) (*Postfix, error) {
	version, err := postfixVersion()
	if err != nil {
		return nil, err
	}
	// The postfix user must reach the sasldb and data directory by their
	// absolute paths: a directory of its own, readable by all.
	dir, err := sharedTempDir("postfix")
	if err != nil {
		return nil, err
	}
	p, err := startPostfix(dir, version, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func startPostfix(dir, version string, opts PostfixOptions) (*Postfix, error) {
	if err := makePostfixDirs(dir); err != nil {
		return nil, err
	}
	if opts.SASL {
		if err := writeSASLDB(dir, opts.Users); err != nil {
			return nil, err
		}
	}
	var sink *SMTPSink
	relay := opts.Relay
	if relay == "" {
		var err error
		if sink, err = NewSMTPSink(); err != nil {
			return nil, fmt.Errorf("postfix: %w", err)
		}
		relay = sink.Addr
	}
	// A free port found here may be taken by someone else before master
	// binds it; then try again with new ports, a bounded number of times.
	var lastErr error
	for range 3 {
		p := &Postfix{Dir: dir, LogPath: filepath.Join(dir, "maillog"), Version: version, Sink: sink}
		ports, err := postfixPorts(opts)
		if err != nil {
			sink.close()
			return nil, err
		}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		if len(ports) > 1 {
			p.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		}
		if err := writePostfixConfig(dir, opts, relay, ports); err != nil {
			sink.close()
			return nil, err
		}
		os.Remove(p.LogPath)
		if lastErr = p.run(); lastErr == nil {
			return p, nil
		}
		// master logs a failed bind to syslog only: look for the port.
		if !anyTaken(ports) {
			break
		}
	}
	sink.close()
	return nil, lastErr
}

// sbin finds a Postfix or Cyrus SASL command: on PATH, else in
// /usr/sbin (Debian's place for both, not on every user's PATH).
func sbin(name string) string {
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	return filepath.Join("/usr/sbin", name)
}

// anyTaken reports whether one of ports cannot be bound on 127.0.0.1
// (someone else took it).
func anyTaken(ports []int) bool {
	for _, port := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return true
		}
		l.Close()
	}
	return false
}

// postfixVersion asks postconf for mail_version.
func postfixVersion() (string, error) {
	out, err := exec.Command(sbin("postconf"), "-h", "-d", "mail_version").Output()
	if err != nil {
		return "", fmt.Errorf("postfix: postconf -d mail_version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// postfixPorts picks the smtpd ports: plain, and implicit TLS when a
// certificate is given.
func postfixPorts(opts PostfixOptions) ([]int, error) {
	n := 1
	if opts.CertFile != "" {
		n = 2
	}
	ports := make([]int, n)
	for i := range ports {
		var err error
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// run starts master in the foreground, in a session of its own (master
// calls setsid), and waits until every smtpd listener answers.
func (p *Postfix) run() error {
	stderr, err := os.Create(filepath.Join(p.Dir, "stderr.log"))
	if err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	defer stderr.Close()
	p.cmd = exec.Command(filepath.Join(postfixDaemons, "master"), "-c", filepath.Join(p.Dir, "etc"), "-s")
	p.cmd.Stdout, p.cmd.Stderr = stderr, stderr
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("postfix: start master: %w", err)
	}
	p.exited = make(chan struct{})
	go waitPostfix(p)
	for _, addr := range []string{p.Addr, p.TLSAddr} {
		if addr == "" {
			continue
		}
		if err := p.waitListening(addr, 15*time.Second); err != nil {
			p.stop()
			return err
		}
	}
	return nil
}

// waitPostfix reaps the master process.
func waitPostfix(p *Postfix) {
	p.err = p.cmd.Wait()
	close(p.exited)
}

// waitListening dials addr until it answers, master exits or the
// deadline passes.
func (p *Postfix) waitListening(addr string, limit time.Duration) error {
	switch dialUntil("tcp", addr, p.exited, time.Now().Add(limit)) {
	case nil:
		return nil
	case errExitedFirst:
		return fmt.Errorf("postfix %s exited before listening on %s: %v\n%s%s%s", p.Dir, addr, p.err, p.Log(), p.stderr(), p.check())
	default:
		return fmt.Errorf("postfix %s: nothing listens on %s after %v\n%s%s", p.Dir, addr, limit, p.Log(), p.stderr())
	}
}

// check runs "postfix check" on the configuration, for a master that
// failed to start: master logs why to syslog only, postfix(1) to the log
// file.
func (p *Postfix) check() string {
	out, err := exec.Command(sbin("postfix"), "-c", filepath.Join(p.Dir, "etc"), "check").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("postfix check: %v\n%s%s", err, out, p.Log())
	}
	return ""
}

// Close stops the instance (see stop), then closes the SMTP sink, if
// any.
func (p *Postfix) Close() error {
	err := p.stop()
	if serr := p.Sink.close(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// stop ends master and every process it started: SIGKILL to the process
// group (master leads its own session; a test instance keeps nothing
// worth a clean shutdown), then it waits for master and until no process
// of the group runs. The children are reparented to init, which may take
// a second to reap them: a zombie does not count.
func (p *Postfix) stop() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
	default:
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("postfix %s: kill: %w", p.Dir, err)
		}
		<-p.exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		left := groupRunning(pgid)
		if len(left) == 0 {
			return nil
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix %s: processes %v of group %d left after SIGKILL", p.Dir, left, pgid)
		}
		time.Sleep(delay) // waiting for the kernel to end them, with a deadline
	}
}

// groupRunning lists the processes of process group pgid that are not
// zombies, from /proc.
func groupRunning(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ")".
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Pid is the master process id (also its process group).
func (p *Postfix) Pid() int { return p.cmd.Process.Pid }

// Log returns Postfix's log (maillog_file) so far.
func (p *Postfix) Log() string { return readFile(p.LogPath) }

func (p *Postfix) stderr() string { return readFile(filepath.Join(p.Dir, "stderr.log")) }

// FindLog polls the log until a line matches the regular expression
// pattern and returns that line, or fails with ErrLogTimeout after limit.
// Postfix logs through postlogd: a line may come a moment after the SMTP
// reply it belongs to.
func (p *Postfix) FindLog(pattern string, limit time.Duration) (string, error) {
	return findLog("postfix", p.LogPath, pattern, limit)
}

// WaitLog is FindLog with a 10 s limit that fails the test.
func (p *Postfix) WaitLog(t testing.TB, pattern string) string {
	t.Helper()
	return waitLog(t, "postfix", p.LogPath, pattern)
}

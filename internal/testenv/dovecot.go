package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/freeport"
)

// DovecotOptions configure a Dovecot instance. The zero value starts an
// instance without users.
type DovecotOptions struct {
	// Users maps accounts (user@domain) to passwords, stored as {PLAIN} in a
	// passwd-file.
	Users map[string]string
	// Messages maps an account to raw RFC 5322 messages put in its INBOX
	// before the start.
	Messages map[string][]string
	// TrustedNetworks go to login_trusted_networks: clients from these
	// CIDRs may send their client's address with ID (x-originating-ip).
	TrustedNetworks []string
	// CertFile and KeyFile are the server certificate (for STARTTLS and
	// imaps). When empty a self-signed certificate is made (see
	// Dovecot.CertFile).
	CertFile, KeyFile string
	// Passdb replaces the passwd-file passdb block, e.g. for proxy mode:
	//	passdb {
	//	  driver = static
	//	  args = proxy=y host=127.0.0.1 port=14301 nopassword=y
	//	}
	Passdb string
	// Extra is appended to the configuration as is.
	Extra string
	// MailUser owns the maildirs and runs the mail processes ("nobody"
	// when empty). Dovecot refuses root.
	MailUser string
	// Plain and TLS are the IMAP listening ports; 0 picks free ones. The
	// other protocols always listen on free ports.
	Plain, TLS int
	// Protocols to serve: IMAP, POP3, Sieve (ManageSieve) and Submission;
	// empty means IMAP alone. Each needs its Debian package (dovecot-imapd,
	// dovecot-pop3d, dovecot-managesieved, dovecot-submissiond).
	// TrustedNetworks apply to all: XCLIENT for POP3, ManageSieve and
	// submission, ID for IMAP.
	Protocols []string
	// SubmissionRelay is the SMTP server ("host:port") the submission
	// service relays to. When empty and Submission is served, an SMTPSink
	// is started (Dovecot.Sink) and closed with the instance.
	SubmissionRelay string
	// MailDir, when set, holds the users' homes (and so their maildirs)
	// instead of the instance's own directory: several instances started
	// with the same MailDir and Users serve one mail store, as the members
	// of a pool on shared storage do. Make it with SharedMailDir; it
	// outlives each instance. Messages are written by every instance
	// (the same file names: the last write wins).
	MailDir string
}

// Dovecot is a running instance.
type Dovecot struct {
	// Listening addresses (127.0.0.1:port) of the protocols served; empty
	// for the others.
	Addr              string // plain IMAP with STARTTLS
	TLSAddr           string // implicit TLS (imaps)
	POP3Addr          string // plain POP3 with STLS
	POP3TLSAddr       string // implicit TLS (pop3s)
	SieveAddr         string // ManageSieve with STARTTLS (Dovecot has no implicit TLS sieve)
	SubmissionAddr    string // submission with STARTTLS
	SubmissionTLSAddr string // implicit TLS (submissions)
	// Sink receives what the submission service relays, when Submission is
	// served and DovecotOptions.SubmissionRelay is empty; else nil.
	Sink *SMTPSink

	Dir      string // holds the configuration, users, maildirs and log
	LogPath  string // Dovecot's log file
	CertFile string // the server certificate (PEM), usable as a CA file when self-signed
	Config   string // path of dovecot.conf

	homes  map[string]string // account -> home directory
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result once exited is closed
}

// StartDovecot starts an instance for the test and stops it in t.Cleanup.
// It skips the test when dovecot or a package for one of opts.Protocols is
// not installed (see LookPath) or the test does not run as root (Dovecot
// needs root to switch users).
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	bin := LookPath(t, "dovecot", "dovecot-imapd")
	if os.Geteuid() != 0 {
		Missing(t, "dovecot tests need root (to switch to the mail user)")
	}
	protocols, err := opts.protocols()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if missing := missingPackages(protocols); len(missing) > 0 {
		Missing(t, "dovecot services for %v not found in %s (apt-get install -y %s)", protocols, libexecDir, strings.Join(missing, " "))
	}
	d, err := NewDovecot(bin, opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
		if t.Failed() {
			t.Logf("dovecot log %s:\n%s", d.LogPath, d.Log())
		}
		os.RemoveAll(d.Dir)
	})
	return d
}

// NewDovecot starts an instance of the dovecot binary bin and waits until
// all its ports accept connections. The caller must Close it and may
// remove d.Dir afterwards. For programs other than tests (bench/).
func NewDovecot(bin string, opts DovecotOptions) (*Dovecot, error) {
	protocols, err := opts.protocols()
	if err != nil {
		return nil, err
	}
	if missing := missingPackages(protocols); len(missing) > 0 {
		return nil, fmt.Errorf("dovecot: services for %v not found in %s (apt-get install -y %s)", protocols, libexecDir, strings.Join(missing, " "))
	}
	opts.Protocols = protocols
	// Login and mail processes run as other users and must reach the files.
	dir, err := sharedTempDir("dovecot")
	if err != nil {
		return nil, err
	}
	d, err := startDovecot(bin, dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return d, nil
}

func startDovecot(bin, dir string, opts DovecotOptions) (*Dovecot, error) {
	mailUser := opts.MailUser
	if mailUser == "" {
		mailUser = "nobody"
	}
	u, err := user.Lookup(mailUser)
	if err != nil {
		return nil, fmt.Errorf("dovecot: mail user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if opts.CertFile == "" {
		opts.CertFile, opts.KeyFile, err = writeSelfSigned(dir)
		if err != nil {
			return nil, err
		}
	}
	homes, err := writeUsers(dir, opts, uid, gid)
	if err != nil {
		return nil, err
	}
	var sink *SMTPSink
	relay := opts.SubmissionRelay
	if relay == "" && slices.Contains(opts.Protocols, Submission) {
		if sink, err = NewSMTPSink(); err != nil {
			return nil, fmt.Errorf("dovecot: %w", err)
		}
		relay = sink.Addr
	}
	relayHost, relayPort, err := net.SplitHostPort(relay)
	if err != nil && relay != "" {
		return nil, fmt.Errorf("dovecot: DovecotOptions.SubmissionRelay %q: %w", relay, err)
	}
	// A free port found here may be taken by someone else before Dovecot
	// binds it; then try again with new ports, a bounded number of times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		d := &Dovecot{
			Dir:      dir,
			LogPath:  filepath.Join(dir, "dovecot.log"),
			CertFile: opts.CertFile,
			Config:   filepath.Join(dir, "dovecot.conf"),
			Sink:     sink,
			homes:    homes,
		}
		ports, err := pickPorts(opts)
		if err != nil {
			sink.close()
			return nil, err
		}
		d.setAddrs(ports)
		err = writeConfig(d.Config, configData{
			Dir:       dir,
			Name:      fmt.Sprintf("%s-%d", filepath.Base(dir), attempt),
			Cert:      opts.CertFile,
			Key:       opts.KeyFile,
			UID:       min(uid, 500),
			Trusted:   strings.Join(opts.TrustedNetworks, " "),
			Passdb:    opts.Passdb,
			Protocols: opts.Protocols,
			Ports:     ports,
			RelayHost: relayHost,
			RelayPort: relayPort,
			Extra:     opts.Extra,
		})
		if err != nil {
			sink.close()
			return nil, err
		}
		os.Remove(d.LogPath)
		if lastErr = d.run(bin); lastErr == nil {
			return d, nil
		}
		if !strings.Contains(d.Log(), "in use") || opts.Plain != 0 || opts.TLS != 0 {
			break
		}
	}
	sink.close()
	return nil, lastErr
}

// pickPorts returns a port for every listener of opts.Protocols, by
// listener name: opts.Plain and opts.TLS for IMAP when set, else free ones
// (freeport: distinct from each other and from every port handed out
// before in this process).
func pickPorts(opts DovecotOptions) (map[string]int, error) {
	ports := make(map[string]int)
	for _, p := range opts.Protocols {
		for _, l := range protocolInfo[p].listeners {
			port := 0
			switch l.name {
			case "imap":
				port = opts.Plain
			case "imaps":
				port = opts.TLS
			}
			if port == 0 {
				var err error
				if port, err = freeport.Port(); err != nil {
					return nil, err
				}
			}
			ports[l.name] = port
		}
	}
	return ports, nil
}

// setAddrs fills the address fields from the ports by listener name.
func (d *Dovecot) setAddrs(ports map[string]int) {
	for name, field := range map[string]*string{
		"imap": &d.Addr, "imaps": &d.TLSAddr,
		"pop3": &d.POP3Addr, "pop3s": &d.POP3TLSAddr,
		"sieve":      &d.SieveAddr,
		"submission": &d.SubmissionAddr, "submissions": &d.SubmissionTLSAddr,
	} {
		if port, ok := ports[name]; ok {
			*field = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
}

// addrs lists the addresses served.
func (d *Dovecot) addrs() []string {
	var out []string
	for _, a := range []string{d.Addr, d.TLSAddr, d.POP3Addr, d.POP3TLSAddr, d.SieveAddr, d.SubmissionAddr, d.SubmissionTLSAddr} {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// run starts the master process and waits for all its listeners.
func (d *Dovecot) run(bin string) error {
	stderr, err := os.Create(filepath.Join(d.Dir, "stderr.log"))
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	defer stderr.Close()
	d.cmd = exec.Command(bin, "-F", "-c", d.Config)
	d.cmd.Stdout, d.cmd.Stderr = stderr, stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("dovecot: start %s: %w", bin, err)
	}
	d.exited = make(chan struct{})
	go waitDovecot(d)
	for _, addr := range d.addrs() {
		if err := d.waitListening(addr, 15*time.Second); err != nil {
			d.kill()
			return err
		}
	}
	return nil
}

// waitDovecot reaps the master process.
func waitDovecot(d *Dovecot) {
	d.err = d.cmd.Wait()
	close(d.exited)
}

// waitListening dials addr until it answers, Dovecot exits or the deadline
// passes.
func (d *Dovecot) waitListening(addr string, limit time.Duration) error {
	switch dialUntil("tcp", addr, d.exited, time.Now().Add(limit)) {
	case nil:
		return nil
	case errExitedFirst:
		return fmt.Errorf("dovecot %s exited before listening on %s: %v\n%s%s", d.Config, addr, d.err, d.Log(), d.stderr())
	default:
		return fmt.Errorf("dovecot %s: nothing listens on %s after %v\n%s%s", d.Config, addr, limit, d.Log(), d.stderr())
	}
}

// Close stops the instance: SIGKILL to its process group (a test
// instance keeps nothing worth a clean shutdown, and Dovecot's master can
// take seconds to stop its children on SIGTERM). Then it closes the SMTP
// sink, if any.
func (d *Dovecot) Close() error {
	err := d.kill()
	if serr := d.Sink.close(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// kill ends the process group and waits for the master.
func (d *Dovecot) kill() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	select {
	case <-d.exited:
		return nil
	default:
	}
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("dovecot %s: kill: %w", d.Config, err)
	}
	<-d.exited
	return nil
}

// Home returns the home directory of account (its Maildir, and for
// ManageSieve its sieve/ scripts and .dovecot.sieve link), or "" for an
// account not in DovecotOptions.Users.
func (d *Dovecot) Home(account string) string { return d.homes[account] }

// Pid is the master process id.
func (d *Dovecot) Pid() int { return d.cmd.Process.Pid }

// Log returns the log file's content so far.
func (d *Dovecot) Log() string { return readFile(d.LogPath) }

// LoggedInFrom reports whether Dovecot has logged a login (of any
// service) from the client address ip.
func (d *Dovecot) LoggedInFrom(ip string) bool {
	return regexp.MustCompile(`Login: user=<[^>]*>, method=[A-Z0-9]+, rip=` + regexp.QuoteMeta(ip) + `,`).MatchString(d.Log())
}

func (d *Dovecot) stderr() string { return readFile(filepath.Join(d.Dir, "stderr.log")) }

// FindLog polls the log until a line matches the regular expression
// pattern and returns that line, or fails with ErrLogTimeout after limit.
func (d *Dovecot) FindLog(pattern string, limit time.Duration) (string, error) {
	return findLog("dovecot", d.LogPath, pattern, limit)
}

// WaitLog is FindLog with a 10 s limit that fails the test.
func (d *Dovecot) WaitLog(t testing.TB, pattern string) string {
	t.Helper()
	return waitLog(t, "dovecot", d.LogPath, pattern)
}

// FreePort is freeport.Port: a TCP port on 127.0.0.1 that was free a
// moment ago and that no other caller in this process was given.
func FreePort() (int, error) { return freeport.Port() }

// FreeAddr is FreePort as "127.0.0.1:port", failing the test on error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

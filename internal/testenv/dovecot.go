package testenv

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/pipegate/pipegate/tlsconf"
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
	// Plain and TLS are the listening ports; 0 picks free ones.
	Plain, TLS int
}

// Dovecot is a running instance.
type Dovecot struct {
	Addr     string // plain IMAP with STARTTLS, 127.0.0.1:port
	TLSAddr  string // implicit TLS (imaps), 127.0.0.1:port
	Dir      string // holds the configuration, users, maildirs and log
	LogPath  string // Dovecot's log file
	CertFile string // the server certificate (PEM), usable as a CA file when self-signed
	Config   string // path of dovecot.conf

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result once exited is closed
}

// StartDovecot starts an instance for the test and stops it in t.Cleanup.
// It skips the test when dovecot is not installed (see LookPath) or the
// test does not run as root (Dovecot needs root to switch users).
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	bin := LookPath(t, "dovecot", "dovecot-imapd")
	if os.Geteuid() != 0 {
		Missing(t, "dovecot tests need root (to switch to the mail user)")
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
// both ports accept connections. The caller must Close it and may remove
// d.Dir afterwards. For programs other than tests (bench/).
func NewDovecot(bin string, opts DovecotOptions) (*Dovecot, error) {
	dir, err := os.MkdirTemp("", "pipegate-dovecot-")
	if err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	// Login and mail processes run as other users and must reach the files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
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
	if err := writeUsers(dir, opts, uid, gid); err != nil {
		return nil, err
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
		}
		plain, tlsPort := opts.Plain, opts.TLS
		if plain == 0 {
			if plain, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if tlsPort == 0 {
			if tlsPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(plain))
		d.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		if err := writeConfig(d, opts, plain, tlsPort, uid, attempt); err != nil {
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
	return nil, lastErr
}

// run starts the master process and waits for both listeners.
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
	for _, addr := range []string{d.Addr, d.TLSAddr} {
		if err := d.waitListening(addr, 15*time.Second); err != nil {
			d.Close()
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
	deadline := time.Now().Add(limit)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("dovecot %s exited before listening on %s: %v\n%s%s", d.Config, addr, d.err, d.Log(), d.stderr())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot %s: nothing listens on %s after %v\n%s%s", d.Config, addr, limit, d.Log(), d.stderr())
		}
	}
}

// Close stops the instance: SIGKILL to its process group (a test
// instance keeps nothing worth a clean shutdown, and Dovecot's master can
// take seconds to stop its children on SIGTERM).
func (d *Dovecot) Close() error {
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

// Pid is the master process id.
func (d *Dovecot) Pid() int { return d.cmd.Process.Pid }

// Log returns the log file's content so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

func (d *Dovecot) stderr() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "stderr.log"))
	return string(b)
}

// ErrLogTimeout is returned by FindLog when no line matched in time.
var ErrLogTimeout = errors.New("no matching log line")

// FindLog polls the log until a line matches the regular expression
// pattern and returns that line, or fails after limit.
func (d *Dovecot) FindLog(pattern string, limit time.Duration) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("dovecot log pattern: %w", err)
	}
	deadline := time.Now().Add(limit)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		for _, line := range strings.Split(d.Log(), "\n") {
			if re.MatchString(line) {
				return line, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w for %q in %s within %v", ErrLogTimeout, pattern, d.LogPath, limit)
		}
		time.Sleep(delay) // polling a file with a deadline, not synchronisation by time
	}
}

// WaitLog is FindLog with a 10 s limit that fails the test.
func (d *Dovecot) WaitLog(t testing.TB, pattern string) string {
	t.Helper()
	line, err := d.FindLog(pattern, 10*time.Second)
	if err != nil {
		t.Fatalf("%v\nlog so far:\n%s", err, d.Log())
	}
	return line
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as "127.0.0.1:port", failing the test on error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

func writeSelfSigned(dir string) (certFile, keyFile string, err error) {
	cert, err := tlsconf.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		return "", "", fmt.Errorf("dovecot: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", fmt.Errorf("dovecot: certificate key: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("dovecot: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("dovecot: %w", err)
	}
	return certFile, keyFile, nil
}

// writeUsers writes the passwd-file and each user's maildir (with
// opts.Messages in INBOX), owned by the mail user.
func writeUsers(dir string, opts DovecotOptions, uid, gid int) error {
	var users bytes.Buffer
	accounts := make([]string, 0, len(opts.Users))
	for a := range opts.Users {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	for i, account := range accounts {
		pass := opts.Users[account]
		if strings.ContainsAny(account+pass, ":\n") {
			return fmt.Errorf("dovecot: user %q: account and password must not hold ':' or newlines", account)
		}
		home := filepath.Join(dir, "home", strconv.Itoa(i))
		fmt.Fprintf(&users, "%s:{PLAIN}%s:%d:%d::%s\n", account, pass, uid, gid, home)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(home, "Maildir", sub), 0o700); err != nil {
				return fmt.Errorf("dovecot: %w", err)
			}
		}
		for j, msg := range opts.Messages[account] {
			name := filepath.Join(home, "Maildir", "cur", fmt.Sprintf("%d.M%dP1.pipegate:2,", 1700000000+j, j))
			if err := os.WriteFile(name, []byte(strings.ReplaceAll(msg, "\r\n", "\n")), 0o600); err != nil {
				return fmt.Errorf("dovecot: %w", err)
			}
		}
	}
	if len(accounts) > 0 {
		err := filepath.Walk(filepath.Join(dir, "home"), func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("dovecot: chown maildir: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), users.Bytes(), 0o644); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return nil
}

var configTemplate = template.Must(template.New("dovecot.conf").Parse(`# written by pipegate/internal/testenv
protocols = imap
listen = 127.0.0.1
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
instance_name = pipegate-{{.Name}}
log_path = {{.Dir}}/dovecot.log
ssl = yes
ssl_cert = <{{.Cert}}
ssl_key = <{{.Key}}
ssl_dh = </usr/share/dovecot/dh.pem
default_internal_user = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {{.UID}}
mail_location = maildir:~/Maildir
{{- if .Trusted}}
login_trusted_networks = {{.Trusted}}
{{- end}}
{{if .Passdb}}{{.Passdb}}{{else}}passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{.Dir}}/users
}{{end}}
userdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
}
service imap-login {
  inet_listener imap {
    port = {{.Plain}}
  }
  inet_listener imaps {
    port = {{.TLS}}
    ssl = yes
  }
}
service stats {
  inet_listener http {
    port = 0
  }
}
{{.Extra}}
`))

func writeConfig(d *Dovecot, opts DovecotOptions, plain, tlsPort, uid, attempt int) error {
	var b bytes.Buffer
	err := configTemplate.Execute(&b, map[string]any{
		"Dir":     d.Dir,
		"Name":    fmt.Sprintf("%s-%d", filepath.Base(d.Dir), attempt),
		"Cert":    opts.CertFile,
		"Key":     opts.KeyFile,
		"UID":     min(uid, 500),
		"Trusted": strings.Join(opts.TrustedNetworks, " "),
		"Passdb":  opts.Passdb,
		"Plain":   plain,
		"TLS":     tlsPort,
		"Extra":   opts.Extra,
	})
	if err != nil {
		return fmt.Errorf("dovecot: config: %w", err)
	}
	if err := os.WriteFile(d.Config, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return nil
}

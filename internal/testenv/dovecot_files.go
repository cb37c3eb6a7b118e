package testenv

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/tlsconf"
)

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
func writeUsers(dir string, opts DovecotOptions, uid, gid int) (map[string]string, error) {
	var users bytes.Buffer
	accounts := make([]string, 0, len(opts.Users))
	for a := range opts.Users {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	homes := make(map[string]string, len(accounts))
	homeDir := filepath.Join(dir, "home")
	if opts.MailDir != "" {
		homeDir = filepath.Join(opts.MailDir, "home")
	}
	for i, account := range accounts {
		pass := opts.Users[account]
		if strings.ContainsAny(account+pass, ":\n") {
			return nil, fmt.Errorf("dovecot: user %q: account and password must not hold ':' or newlines", account)
		}
		home := filepath.Join(homeDir, strconv.Itoa(i))
		homes[account] = home
		fmt.Fprintf(&users, "%s:{PLAIN}%s:%d:%d::%s\n", account, pass, uid, gid, home)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(home, "Maildir", sub), 0o700); err != nil {
				return nil, fmt.Errorf("dovecot: %w", err)
			}
		}
		for j, msg := range opts.Messages[account] {
			name := filepath.Join(home, "Maildir", "cur", fmt.Sprintf("%d.M%dP1.pipegate:2,", 1700000000+j, j))
			if err := os.WriteFile(name, []byte(strings.ReplaceAll(msg, "\r\n", "\n")), 0o600); err != nil {
				return nil, fmt.Errorf("dovecot: %w", err)
			}
		}
	}
	if len(accounts) > 0 {
		err := filepath.Walk(homeDir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return nil, fmt.Errorf("dovecot: chown maildir: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), users.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	return homes, nil
}

// SharedMailDir returns a new directory for DovecotOptions.MailDir,
// reachable by the mail processes (unlike t.TempDir's parents) and
// removed in t.Cleanup, after the instances that use it (started later,
// so stopped earlier).
func SharedMailDir(t testing.TB) string {
	t.Helper()
	dir, err := sharedTempDir("maildir")
	if err != nil {
		t.Fatalf("testenv: shared mail directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

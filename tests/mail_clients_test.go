package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
)

// TestMailFetchmail polls alice's mailbox with fetchmail through
// pipegate's two POP3 listeners, once with STLS required and once over
// implicit TLS, each time verifying pipegate's certificate against the
// test CA. Both polls deliver alice's messages (kept on the server), and
// Dovecot logs each login with the client's address and pipegate's
// session ID, passed by XCLIENT.
func TestMailFetchmail(t *testing.T) {
	fetchmail := testenv.LookPath(t, "fetchmail", "fetchmail")
	py := testenv.LookPath(t, "python3", "python3") // the source-address plugin
	testenv.LookPath(t, "dovecot", "dovecot-pop3d")
	f := startMailFront(t, testenv.POP3, func(d *testenv.Dovecot) string {
		return fmt.Sprintf(`imap://%s, "pop3+starttls://%s?server_name=backend.test"`, d.Addr, d.POP3Addr)
	})
	account := "alice@a.test"
	for _, tc := range []struct{ tls, addr, client string }{
		{"stls", f.plainAddr, "127.0.0.2"},
		{"ssl", f.tlsAddr, "127.0.0.3"},
	} {
		r := fetchmailRun{fetchmail: fetchmail, python: py, addr: tc.addr, tls: tc.tls, caFile: f.caFile,
			account: account, password: backend1Users[account], client: tc.client}
		mbox, out := r.run(t)
		checkMessages(t, "fetchmail over "+tc.tls, mbox, out, account)
		want := messageCount[account]
		// fetchmail's --verbose output: the dialogue, the TLS negotiated and
		// what the server had.
		wants := []string{"SSL/TLS: using protocol TLSv1.", fmt.Sprintf("%d messages for %s", want, account)}
		if tc.tls == "stls" {
			wants = append(wants, "POP3> STLS", "upgrade to TLS succeeded")
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("fetchmail over %s did not report %q:\n%s", tc.tls, w, out)
			}
		}
		f.waitLogin(t, "pop3-login", account, tc.client)
	}
	f.checkLoginCount(t, "pop3-login", 2)
}

// TestMailSwaks sends a message with swaks through pipegate's submission
// listeners, with STARTTLS (from 127.0.0.2) on one and implicit TLS (from
// 127.0.0.3) on the other, verifying pipegate's certificate and logging in
// with AUTH PLAIN, and finds each message at the sink Dovecot relays to,
// with the envelope swaks gave and a Received header naming the client's
// EHLO name and address. Dovecot logs each login with the client's
// address and pipegate's session ID.
func TestMailSwaks(t *testing.T) {
	swaks := testenv.LookPath(t, "swaks", "swaks")
	testenv.LookPath(t, "dovecot", "dovecot-submissiond")
	f := startSubmissionFront(t)
	for _, tc := range []struct{ mode, addr, tlsFlag, client string }{
		{"starttls", f.plainAddr, "--tls", "127.0.0.2"},
		{"implicit TLS", f.tlsAddr, "--tls-on-connect", "127.0.0.3"},
	} {
		subject := "swaks through pipegate, " + tc.mode
		host, port := hostPort(t, tc.addr)
		out, err := clientCommand(t, swaks, "--server", host, "--port", port, "--local-interface", tc.client,
			tc.tlsFlag, "--tls-verify", "--tls-ca-path", f.caFile,
			"--ehlo", "client.test", "--auth", "PLAIN", "--auth-user", "alice@a.test", "--auth-password", "alice-secret",
			"--from", "alice@a.test", "--to", "rcpt@example.net",
			"--header", "Subject: "+subject, "--body", "hello from swaks",
			"--timeout", "15").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks over %s: %v\n%s", tc.mode, err, out)
		}
		f.checkRelayed(t, subject, "client.test", tc.client, "alice@a.test", "rcpt@example.net")
		f.waitLogin(t, "submission-login", "alice@a.test", tc.client)
	}
	f.checkLoginCount(t, "submission-login", 2)
}

// TestMailMsmtp does what TestMailSwaks does with msmtp, configured by a
// private msmtprc (mode 0600) that holds the password; the envelope
// sender is the rc file's "from".
func TestMailMsmtp(t *testing.T) {
	msmtp := testenv.LookPath(t, "msmtp", "msmtp")
	testenv.LookPath(t, "dovecot", "dovecot-submissiond")
	f := startSubmissionFront(t)
	dir := t.TempDir()
	for _, tc := range []struct{ mode, addr, starttls, client string }{
		{"starttls", f.plainAddr, "on", "127.0.0.2"},
		{"implicit TLS", f.tlsAddr, "off", "127.0.0.3"},
	} {
		subject := "msmtp through pipegate, " + tc.mode
		host, port := hostPort(t, tc.addr)
		rc := filepath.Join(dir, "msmtprc")
		if err := os.WriteFile(rc, []byte(fmt.Sprintf(`account pipegate
host %s
port %s
source_ip %s
domain client.test
tls on
tls_starttls %s
tls_trust_file %s
auth plain
user alice@a.test
password alice-secret
from alice@a.test
timeout 15
account default : pipegate
`, host, port, tc.client, tc.starttls, f.caFile)), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := clientCommand(t, msmtp, "--file", rc, "rcpt@example.net")
		cmd.Stdin = strings.NewReader("From: alice@a.test\r\nTo: rcpt@example.net\r\nSubject: " + subject + "\r\n\r\nhello from msmtp\r\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("msmtp over %s: %v\n%s", tc.mode, err, out)
		}
		f.checkRelayed(t, subject, "client.test", tc.client, "alice@a.test", "rcpt@example.net")
		f.waitLogin(t, "submission-login", "alice@a.test", tc.client)
	}
	f.checkLoginCount(t, "submission-login", 2)
}

// TestMailMbsync syncs alice's INBOX with a local Maildir with mbsync
// through pipegate's two IMAP listeners, with STARTTLS (from 127.0.0.2)
// and with implicit TLS (from 127.0.0.3), each time verifying pipegate's
// certificate against the test CA. A pull brings exactly alice's
// messages; a message put into the Maildir and pushed is then at Dovecot
// (found, and deleted again, with go-imap). Dovecot logs each login with
// the client's address and pipegate's session ID, passed by ID. With a
// wrong password mbsync fails and shows pipegate's refusal.
func TestMailMbsync(t *testing.T) {
	mbsync := testenv.LookPath(t, "mbsync", "isync")
	py := testenv.LookPath(t, "python3", "python3") // the source-address Tunnel
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	f := startMailFront(t, testenv.IMAP, func(d *testenv.Dovecot) string {
		return fmt.Sprintf(`"imap+starttls://%s?server_name=backend.test"`, d.Addr)
	})
	account := "alice@a.test"
	for _, tc := range []struct{ tlsType, addr, client string }{
		{"STARTTLS", f.plainAddr, "127.0.0.2"},
		{"IMAPS", f.tlsAddr, "127.0.0.3"},
	} {
		r := mbsyncRun{mbsync: mbsync, python: py, addr: tc.addr, tlsType: tc.tlsType, caFile: f.caFile,
			account: account, password: backend1Users[account], client: tc.client}
		maildir := filepath.Join(t.TempDir(), "INBOX")
		out, err := r.sync(t, maildir, "--pull")
		if err != nil {
			t.Fatalf("mbsync --pull over %s: %v\n%s", tc.tlsType, err, out)
		}
		if !strings.Contains(out, "Connection is now encrypted") {
			t.Errorf("mbsync over %s did not report TLS:\n%s", tc.tlsType, out)
		}
		checkMessages(t, "mbsync over "+tc.tlsType, maildirMessages(t, maildir), out, account)

		subject := "pushed by mbsync over " + tc.tlsType
		name := fmt.Sprintf("%d.P%dQ1.client.test", time.Now().Unix(), os.Getpid()) // Maildir: time.unique.host
		writeFile(t, filepath.Join(maildir, "new", name), "From: alice@a.test\nTo: alice@a.test\nSubject: "+subject+"\n\nhello from mbsync\n")
		settleMaildir(t, maildir)
		if out, err := r.sync(t, maildir, "--push"); err != nil {
			t.Fatalf("mbsync --push over %s: %v\n%s", tc.tlsType, err, out)
		}
		f.takeMessage(t, "127.0.0.4", account, subject)
		f.waitLogin(t, "imap-login", account, tc.client)
	}

	// mbsync checks the name in pipegate's certificate, through the Tunnel.
	r := mbsyncRun{mbsync: mbsync, python: py, addr: f.tlsAddr, tlsType: "IMAPS", caFile: f.caFile,
		account: account, password: backend1Users[account], client: "127.0.0.5", serverName: "other.test"}
	out, err := r.sync(t, filepath.Join(t.TempDir(), "INBOX"), "--pull")
	if !failedWith(err, out, "certificate owner does not match hostname other.test") {
		t.Errorf("mbsync checking the name other.test in pipegate's certificate: %v, want a failure:\n%s", err, out)
	}
	// A wrong password: Dovecot refuses it (and logs the client's address),
	// pipegate passes the refusal on.
	r.serverName, r.password = "", "wrong-secret"
	out, err = r.sync(t, filepath.Join(t.TempDir(), "INBOX"), "--pull")
	if !failedWith(err, out, "returned an error: NO [AUTHENTICATIONFAILED] Authentication failed.") {
		t.Errorf("mbsync with a wrong password: %v, want a failure that shows the refusal:\n%s", err, out)
	}
	f.d.WaitLog(t, `imap-login: Info: Disconnected: .*\(auth failed, 1 attempts .*user=<alice@a\.test>, .*rip=127\.0\.0\.5,`)
	// mbsync's pull and push, and go-imap's check, for each listener.
	f.checkLoginCount(t, "imap-login", 6)
}

// startSubmissionFront is startMailFront for submission, with Dovecot's
// STARTTLS and implicit TLS ports as backends, as TestMailSubmission has.
func startSubmissionFront(t *testing.T) *mailFront {
	t.Helper()
	return startMailFront(t, testenv.Submission, func(d *testenv.Dovecot) string {
		return fmt.Sprintf(`"submission+starttls://%s?server_name=backend.test", "submissions://%s?server_name=backend.test"`,
			d.SubmissionAddr, d.SubmissionTLSAddr)
	})
}

package tests

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// mailFront is Dovecot behind `pipegate mail` with two listeners of one
// protocol: plain with STARTTLS/STLS, and implicit TLS.
type mailFront struct {
	d                  *testenv.Dovecot
	pg                 *mailProc
	ca                 *tlstest.CA
	caFile             string
	plainAddr, tlsAddr string // pipegate's listeners
}

// startMailFront starts Dovecot serving IMAP and protocol (testenv.IMAP,
// testenv.POP3 or testenv.Submission), trusting pipegate's address
// (127.0.0.1) for ID and XCLIENT, and `pipegate mail` in front of it, with
// listeners of protocol, whose default route is the list of backend URLs
// backends returns. Dovecot and pipegate have
// certificates of one test CA; pipegate's names localhost and 127.0.0.1.
func startMailFront(t *testing.T, protocol string, backends func(d *testenv.Dovecot) string) *mailFront {
	t.Helper()
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, protocol}})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "routes.yaml"), "default: ["+backends(d)+"]\n")
	pcert, pkey := ca.Issue(t, "localhost", "127.0.0.1")
	f := &mailFront{d: d, ca: ca, caFile: ca.CertFile(t), plainAddr: testenv.FreeAddr(t), tlsAddr: testenv.FreeAddr(t)}
	f.pg = startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
    protocol: %s
  - addr: %s
    protocol: %s
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
drain_timeout: 5s
`, f.plainAddr, protocol, f.tlsAddr, protocol, pcert, pkey, f.caFile), []string{"alice-secret"}, f.plainAddr, f.tlsAddr)
	return f
}

// waitLogin waits until Dovecot logs a login of service (imap-login,
// pop3-login, submission-login) for account from client, the address
// pipegate passed (IMAP: ID x-originating-ip; else XCLIENT ADDR), and
// checks that the login's session ID (x-session-id, XCLIENT SESSION) is
// the one pipegate logs for that client's session.
func (f *mailFront) waitLogin(t *testing.T, service, account, client string) {
	t.Helper()
	line := f.d.WaitLog(t, fmt.Sprintf(`%s: Info: Login: user=<%s>, .*rip=%s,`, service, regexp.QuoteMeta(account), regexp.QuoteMeta(client)))
	m := regexp.MustCompile(`, session=<([^>]+)>`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("Dovecot logged the login without a session ID (XCLIENT SESSION):\n%s", line)
	}
	// pipegate logs a session when it ends, which may be a moment after
	// the client has gone.
	waitMailLog(t, f.pg, fmt.Sprintf(`session=%s client=%s:[0-9]+ account=%s `, regexp.QuoteMeta(m[1]), regexp.QuoteMeta(client), regexp.QuoteMeta(account)))
}

// clientCommand is exec.Command for a mail client, killed if it runs
// longer than 30 s (each has its own shorter network timeout), with its
// output collected for at most 5 s after it ends (a fetchmail plugin may
// hold the pipe a moment longer).
func clientCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// waitMailLog polls pipegate's log until a line matches the regular
// expression pattern, for at most 10 s.
func waitMailLog(t *testing.T, p *mailProc, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; !re.MatchString(p.log()); delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q in pipegate's log within 10s:\n%s", pattern, p.log())
		}
		time.Sleep(delay) // polling a file with a deadline, not synchronisation by time
	}
}

// checkLoginCount checks that Dovecot logged want logins of service in
// all, each from a client address other than pipegate's.
func (f *mailFront) checkLoginCount(t *testing.T, service string, want int) {
	t.Helper()
	n := 0
	for line := range strings.SplitSeq(f.d.Log(), "\n") {
		if strings.Contains(line, service+": Info: Login: ") {
			n++
			if strings.Contains(line, "rip=127.0.0.1,") {
				t.Errorf("Dovecot logged a login from pipegate's address, not the client's:\n%s", line)
			}
		}
	}
	if n != want {
		t.Errorf("%d %s logins in Dovecot's log, want %d", n, service, want)
	}
}

// checkRelayed finds the message with subject at Dovecot's SMTP sink and
// checks its envelope and that Dovecot's Received header names the
// client's EHLO name and address, as pipegate passed them by XCLIENT
// (HELO, ADDR).
func (f *mailFront) checkRelayed(t *testing.T, subject, helo, client, from, to string) {
	t.Helper()
	m := f.d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool {
		return bytes.Contains(m.Data, []byte("\r\nSubject: "+subject+"\r\n"))
	})
	if m.From != from || len(m.To) != 1 || m.To[0] != to {
		t.Errorf("%q: envelope %s -> %v, want %s -> [%s]", subject, m.From, m.To, from, to)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("%q: the relayed message does not parse: %v\n%s", subject, err, m.Data)
	}
	received := msg.Header["Received"]
	if want := "from " + helo + " ([" + client + "])"; len(received) == 0 || !strings.HasPrefix(received[0], want) {
		t.Errorf("%q: the topmost Received header does not begin %q: %q", subject, want, received)
	}
	if got := msg.Header.Get("Subject"); got != subject {
		t.Errorf("Subject %q, want %q", got, subject)
	}
}

// relayScript is a fetchmail plugin and an mbsync Tunnel: the client
// speaks its protocol and TLS over the script's stdin and stdout, and the
// script joins them to a TCP connection to host:port from the source
// address bind (neither client can choose a source address itself). A
// client that goes away, even by a reset, ends the connection (half-close
// first), so that the script does not outlive it. argv: host port bind.
const relayScript = `
import contextlib, os, socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 20, source_address=(sys.argv[3], 0))
s.settimeout(None)
def upstream():
    with contextlib.suppress(OSError):  # a client that has gone (reset) has closed
        while True:
            b = os.read(0, 65536)
            if not b:
                break
            s.sendall(b)
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
out = os.fdopen(1, "wb")
with contextlib.suppress(OSError):
    while True:
        b = s.recv(65536)
        if not b:
            break
        out.write(b)
        out.flush()
`

// fetchmailRun is one fetchmail poll of an account into an mbox file.
type fetchmailRun struct {
	fetchmail, python string
	addr              string // pipegate's POP3 listener
	tls               string // "stls" (sslproto auto: STLS required) or "ssl" (implicit TLS)
	caFile            string
	account, password string
	client            string // the source address of the connection (see relayScript)
}

// run writes a private fetchmailrc (mode 0600) and runs fetchmail once in
// the foreground; it returns the delivered messages (what its MDA
// appended) and fetchmail's output.
func (r fetchmailRun) run(t *testing.T) (mbox, output string) {
	t.Helper()
	dir := t.TempDir()
	host, port := hostPort(t, r.addr)
	relay := filepath.Join(dir, "relay.py")
	writeFile(t, relay, relayScript)
	mboxPath := filepath.Join(dir, "mbox")
	tlsOpts := `sslproto "auto"` // STLS, and TLS required
	if r.tls == "ssl" {
		tlsOpts = "ssl"
	}
	// The certificate names localhost, so that is the name polled and
	// checked; the plugin makes the connection, to the address itself.
	rc := fmt.Sprintf(`set no syslog
poll localhost protocol pop3 port %s timeout 15
  plugin "%s %s %s %%p %s"
  user "%s" there with password "%s" is root here
  %s sslcertck sslcertfile "%s"
  keep fetchall
  mda "cat >> %s"
`, port, r.python, relay, host, r.client, r.account, r.password, tlsOpts, r.caFile, mboxPath)
	rcPath := filepath.Join(dir, "fetchmailrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := clientCommand(t, r.fetchmail, "--fetchmailrc", rcPath, "--nodetach", "--nosyslog", "--verbose",
		"--pidfile", filepath.Join(dir, "fetchmail.pid"), "--idfile", filepath.Join(dir, "fetchids"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil { // 1 is "no mail": a failure here as well, the mailbox is not empty
		t.Fatalf("fetchmail over %s: %v\n%s", r.tls, err, out)
	}
	b, err := os.ReadFile(mboxPath)
	if err != nil {
		t.Fatalf("fetchmail over %s delivered nothing: %v\n%s", r.tls, err, out)
	}
	return string(b), string(out)
}

// mbsyncRun is mbsync syncing an account's INBOX through pipegate's IMAP
// listener with a local Maildir.
type mbsyncRun struct {
	mbsync, python    string
	addr              string // pipegate's IMAP listener
	tlsType           string // mbsync's SSLType: STARTTLS or IMAPS
	caFile            string
	account, password string
	client            string // the source address of the connection (see relayScript)
	serverName        string // the name checked in pipegate's certificate; "" is localhost
}

// sync writes a private mbsyncrc (mode 0600) whose channel "inbox" joins
// the INBOX and the Maildir maildir, and runs mbsync once with op (--pull,
// --push); it returns mbsync's output and its exit error.
func (r mbsyncRun) sync(t *testing.T, maildir, op string) (output string, err error) {
	t.Helper()
	dir := t.TempDir()
	host, port := hostPort(t, r.addr)
	relay := filepath.Join(dir, "relay.py")
	writeFile(t, relay, relayScript)
	serverName := cmp.Or(r.serverName, "localhost")
	// The Tunnel makes the connection; Host is the name checked in
	// pipegate's certificate, against the test CA alone.
	rc := filepath.Join(dir, "mbsyncrc")
	writeFile(t, rc, fmt.Sprintf(`IMAPAccount pipegate
Host %s
Tunnel "%s %s %s %s %s"
User %s
Pass %s
SSLType %s
SystemCertificates no
CertificateFile %s
Timeout 15

IMAPStore far
Account pipegate

MaildirStore near
Inbox %s

Channel inbox
Far :far:INBOX
Near :near:INBOX
Create Near
SyncState *
`, serverName, r.python, relay, host, port, r.client, r.account, r.password, r.tlsType, r.caFile, maildir))
	cmd := clientCommand(t, r.mbsync, "--config", rc, "--verbose", op, "inbox")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// failedWith reports whether a client ended with a non-zero exit (not
// killed) and its output holds want.
func failedWith(err error, output, want string) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() > 0 && strings.Contains(output, want)
}

// settleMaildir dates the Maildir dir's new/ and cur/ two seconds back:
// mbsync waits a second before it scans a directory changed within the
// current second, in case a writer is still at work (none is here).
func settleMaildir(t *testing.T, dir string) {
	t.Helper()
	past := time.Now().Add(-2 * time.Second)
	for _, sub := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(dir, sub), past, past); err != nil {
			t.Fatal(err)
		}
	}
}

// checkMessages checks that mailbox, what client delivered (an mbox, or
// maildirMessages), holds exactly account's messages (see allMessages);
// client's output goes into the failure. Lines end in "\n", as clients
// store them.
func checkMessages(t *testing.T, client, mailbox, output, account string) {
	t.Helper()
	want := messageCount[account]
	if n := strings.Count(mailbox, "\nSubject: message "); n != want {
		t.Errorf("%s delivered %d messages, want %d:\n%s\noutput:\n%s", client, n, want, mailbox, output)
	}
	for i := range want {
		if s := fmt.Sprintf("\nSubject: message %d for %s\n", i+1, account); !strings.Contains(mailbox, s) {
			t.Errorf("%s: no %q in the delivered mail:\n%s", client, s[1:len(s)-1], mailbox)
		}
	}
}

// maildirMessages returns the messages in the Maildir dir (new/ and cur/),
// each after a newline.
func maildirMessages(t *testing.T, dir string) string {
	t.Helper()
	var msgs strings.Builder
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("maildir %s: %v", dir, err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			msgs.WriteString("\n")
			msgs.Write(b)
		}
	}
	return msgs.String()
}

// takeMessage logs in as account with go-imap from src on pipegate's
// implicit-TLS listener, checks that the INBOX holds account's messages
// (see allMessages) and one with subject, and deletes that one.
func (f *mailFront) takeMessage(t *testing.T, src, account, subject string) {
	t.Helper()
	c := imapclient.New(tls.Client(dialFrom(t, src, f.tlsAddr), &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost"}), nil)
	defer c.Close()
	if err := c.Login(account, backend1Users[account]).Wait(); err != nil {
		t.Fatalf("go-imap login as %s: %v", account, err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("go-imap select: %v", err)
	}
	msgs, err := c.Fetch(imapv2.SeqSet{{Start: 1, Stop: 0}}, &imapv2.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("go-imap fetch: %v", err)
	}
	var subjects []string
	var uids imapv2.UIDSet
	for _, m := range msgs {
		subjects = append(subjects, m.Envelope.Subject)
		if m.Envelope.Subject == subject {
			uids.AddNum(m.UID)
		}
	}
	want := []string{subject}
	for i := range messageCount[account] {
		want = append(want, fmt.Sprintf("message %d for %s", i+1, account))
	}
	slices.Sort(subjects)
	slices.Sort(want)
	if !slices.Equal(subjects, want) {
		t.Fatalf("INBOX of %s holds messages with the subjects %q, want %q", account, subjects, want)
	}
	store := &imapv2.StoreFlags{Op: imapv2.StoreFlagsAdd, Silent: true, Flags: []imapv2.Flag{imapv2.FlagDeleted}}
	if err := c.Store(uids, store, nil).Close(); err != nil {
		t.Fatalf("go-imap store \\Deleted: %v", err)
	}
	if err := c.UIDExpunge(uids).Close(); err != nil {
		t.Fatalf("go-imap expunge: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || int(sel.NumMessages) != messageCount[account] {
		t.Fatalf("after the expunge: select: %v, %d messages, want %d", err, sel.NumMessages, messageCount[account])
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("go-imap logout: %v", err)
	}
}

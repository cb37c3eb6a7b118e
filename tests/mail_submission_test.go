package tests

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// smtplibScript sends one message with python3's smtplib from 127.0.0.2.
// argv: host port mode(starttls|ssl) cafile user password subject.
const smtplibScript = `
import smtplib, ssl, sys
host, port, mode, ca, user, pw, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names 127.0.0.1 and localhost; verified against the CA
if mode == "ssl":
    c = smtplib.SMTP_SSL(host, port, context=ctx, timeout=20, source_address=("127.0.0.2", 0))
else:
    c = smtplib.SMTP(host, port, timeout=20, source_address=("127.0.0.2", 0))
    c.starttls(context=ctx)
c.login(user, pw)
c.sendmail(user, ["rcpt@example.net"], "From: %s\r\nTo: rcpt@example.net\r\nSubject: %s\r\n\r\nhello\r\n" % (user, subject))
c.quit()
print("sent")
`

// TestMailSubmission runs `pipegate mail` with submission listeners
// (STARTTLS on one, implicit TLS on the other) in front of Dovecot's
// submission service, sends with python3's smtplib, and finds each
// message at the sink Dovecot relays to, with the client's address
// (127.0.0.2, passed by XCLIENT) in Dovecot's Received header.
func TestMailSubmission(t *testing.T) {
	py := testenv.LookPath(t, "python3", "python3")
	testenv.LookPath(t, "dovecot", "dovecot-submissiond")
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "smtp.backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, testenv.Submission}})
	dir := t.TempDir()
	writeFile(t, dir+"/routes.yaml", fmt.Sprintf(`default: [imap://%s, "submission+starttls://%s?server_name=smtp.backend.test", "submissions://%s?server_name=smtp.backend.test"]
`, d.Addr, d.SubmissionAddr, d.SubmissionTLSAddr))
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	starttls, implicit := testenv.FreeAddr(t), testenv.FreeAddr(t)
	startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
    protocol: submission
  - addr: %s
    protocol: submission
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
drain_timeout: 5s
`, starttls, implicit, pcert, pkey, ca.CertFile(t)), []string{"alice-secret"}, starttls, implicit)

	for _, tc := range []struct{ addr, mode string }{{starttls, "starttls"}, {implicit, "ssl"}} {
		subject := "through pipegate " + tc.mode
		host, port := hostPort(t, tc.addr)
		out, err := exec.Command(py, "-c", smtplibScript, host, port, tc.mode, ca.CertFile(t), "alice@a.test", "alice-secret", subject).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "sent") {
			t.Fatalf("smtplib over %s: %v\n%s", tc.mode, err, out)
		}
		m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return strings.Contains(string(m.Data), "Subject: "+subject) })
		if m.From != "alice@a.test" || len(m.To) != 1 || m.To[0] != "rcpt@example.net" {
			t.Errorf("%s: envelope %s -> %v", tc.mode, m.From, m.To)
		}
		head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
		if !strings.Contains(head, "127.0.0.2") {
			t.Errorf("%s: the client's address 127.0.0.2 is not in the relayed headers:\n%s", tc.mode, head)
		}
	}
}

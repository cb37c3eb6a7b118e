// Package testenv starts real servers (Dovecot, Postfix, Cyrus IMAP, an
// SMTP sink) for pipegate's end-to-end tests, each with its own
// configuration, directories and loopback ports: StartDovecot,
// StartPostfix (a submission backend, XCLIENT, Cyrus SASL), StartCyrus
// (imapd, pop3d and timsieved, as a second implementation of each
// protocol) and StartSMTPSink; SieveConnect runs the real sieve-connect
// client against them or a proxy.
//
// Usage:
//
//	func TestLogin(t *testing.T) {
//		d := testenv.StartDovecot(t, testenv.DovecotOptions{
//			Users:           map[string]string{"alice@a.test": "secret"},
//			TrustedNetworks: []string{"127.0.0.1/32"},
//		})
//		conn, _ := net.Dial("tcp", d.Addr) // plain + STARTTLS; d.TLSAddr is implicit TLS
//		...
//		line := d.WaitLog(t, `Login: user=<alice@a.test>.*rip=127\.0\.0\.2`)
//	}
//
// DovecotOptions.Protocols adds POP3, ManageSieve and submission to the
// same instance (d.POP3Addr, d.POP3TLSAddr, d.SieveAddr, d.SubmissionAddr,
// d.SubmissionTLSAddr); submission relays to an in-process SMTPSink
// (d.Sink) that keeps what it receives:
//
//	d := testenv.StartDovecot(t, testenv.DovecotOptions{
//		Users:           map[string]string{"alice@a.test": "secret"},
//		TrustedNetworks: []string{"127.0.0.1/32"}, // XCLIENT and ID accepted from here
//		Protocols:       []string{testenv.POP3, testenv.Submission},
//	})
//	... send through d.SubmissionAddr ...
//	m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return m.From == "alice@a.test" })
//
// A test whose server binary is missing is skipped, unless the environment
// variable PIPEGATE_REQUIRE_REAL=1 is set (CI sets it): then it fails.
// Everything started is stopped by t.Cleanup.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireReal is the environment variable that turns a missing server
// binary from a skip into a failure.
const RequireReal = "PIPEGATE_REQUIRE_REAL"

// LookPath finds a server binary (on PATH, then in /usr/sbin and /sbin) or
// skips the test; with PIPEGATE_REQUIRE_REAL=1 it fails it instead.
// hint names the Debian package to install.
func LookPath(t testing.TB, name, hint string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	Missing(t, "%s not found (apt-get install -y %s)", name, hint)
	return ""
}

// Missing skips the test for a missing prerequisite, or fails it when
// PIPEGATE_REQUIRE_REAL=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireReal) == "1" {
		t.Fatalf(format+" ("+RequireReal+"=1)", args...)
	}
	t.Skipf(format, args...)
}

package demo

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
)

// DemoScript is the Sieve script the printed ManageSieve commands upload.
const DemoScript = "require \"fileinto\";\r\nif header :contains \"subject\" \"pipegate\" { fileinto \"INBOX\"; }\r\n"

// CurlCommand is a shell command that lists a's INBOX through the IMAP
// proxy: on the plain port when it accepts plaintext logins, else over
// imaps with -k (the certificate is self-signed).
func (d *Demo) CurlCommand(a Account) string {
	if !d.PlaintextAuth {
		return d.CurlTLSCommand(a)
	}
	return fmt.Sprintf("curl -s --url %s --user %s -X %s",
		shellQuote("imap://"+d.PlainAddr+"/INBOX"), shellQuote(a.User+":"+a.Password), shellQuote("FETCH 1:* (FLAGS ENVELOPE)"))
}

// CurlTLSCommand is CurlCommand over the implicit-TLS port.
func (d *Demo) CurlTLSCommand(a Account) string {
	return fmt.Sprintf("curl -sk --url %s --user %s -X %s",
		shellQuote("imaps://"+d.TLSAddr+"/INBOX"), shellQuote(a.User+":"+a.Password), shellQuote("FETCH 1:* (FLAGS ENVELOPE)"))
}

// POP3Command is a shell command that lists a's maildrop (LIST) through
// the POP3 proxy, after STLS unless the plain port takes plaintext
// logins.
func (d *Demo) POP3Command(a Account) string {
	return d.curl("pop3", d.POP3Addr, "/", a)
}

// POP3TLSCommand retrieves a's message n through the POP3 proxy's
// implicit-TLS port.
func (d *Demo) POP3TLSCommand(a Account, n int) string {
	return fmt.Sprintf("curl -sk --url %s --user %s",
		shellQuote(fmt.Sprintf("pop3s://%s/%d", d.POP3TLSAddr, n)), shellQuote(a.User+":"+a.Password))
}

func (d *Demo) curl(scheme, addr, path string, a Account) string {
	tls := " --ssl-reqd -k"
	if d.PlaintextAuth {
		tls = ""
	}
	return fmt.Sprintf("curl -s%s --url %s --user %s", tls, shellQuote(scheme+"://"+addr+path), shellQuote(a.User+":"+a.Password))
}

// SubmissionCommand is a shell command that sends a message from a to
// rcpt through the submission proxy, after STARTTLS (-k: the certificate
// is self-signed); the message then shows up in rcpt's INBOX.
func (d *Demo) SubmissionCommand(from, rcpt Account, subject string) string {
	msg := fmt.Sprintf(`From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nSent through pipegate'"'"'s submission proxy.\r\n`, from.User, rcpt.User, subject)
	return fmt.Sprintf("printf '%s' | curl -sS --ssl-reqd -k --url %s --user %s --mail-from %s --mail-rcpt %s --upload-file -",
		msg, shellQuote("smtp://"+d.SubmissionAddr), shellQuote(from.User+":"+from.Password), shellQuote(from.User), shellQuote(rcpt.User))
}

// SubmissionTLSCommand is SubmissionCommand over the implicit-TLS port.
func (d *Demo) SubmissionTLSCommand(from, rcpt Account, subject string) string {
	c := d.SubmissionCommand(from, rcpt, subject)
	c = strings.Replace(c, "--ssl-reqd -k --url "+shellQuote("smtp://"+d.SubmissionAddr), "-k --url "+shellQuote("smtps://"+d.SubmissionTLSAddr), 1)
	return c
}

// SieveConnectCommand is a shell command that uploads DemoScript as
// "pipegate-demo" through the ManageSieve proxy with sieve-connect (after
// STARTTLS, the certificate not verified), activates it and lists the
// scripts.
func (d *Demo) SieveConnectCommand(a Account) string {
	host, port, _ := net.SplitHostPort(d.SieveAddr)
	script := strings.ReplaceAll(DemoScript, "\r\n", `\n`)
	script = strings.ReplaceAll(script, `"`, `\"`)
	sc := fmt.Sprintf("sieve-connect --notlsverify -s %s -p %s -u %s --passwordfd 0", host, port, shellQuote(a.User))
	return fmt.Sprintf(`printf "%s" > /tmp/pipegate-demo.sieve && echo %s | %s --upload --localsieve /tmp/pipegate-demo.sieve --remotesieve pipegate-demo && echo %s | %s --activate --remotesieve pipegate-demo && echo %s | %s --list`,
		script, shellQuote(a.Password), sc, shellQuote(a.Password), sc, shellQuote(a.Password), sc)
}

// SievePythonCommand does what SieveConnectCommand does with python3
// alone, on the plain port (only when PlaintextAuth), and prints the
// server's answers.
func (d *Demo) SievePythonCommand(a Account) string {
	host, port, _ := net.SplitHostPort(d.SieveAddr)
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + a.User + "\x00" + a.Password))
	script := strings.ReplaceAll(DemoScript, "\r\n", `\r\n`)
	script = strings.ReplaceAll(script, `"`, `\"`)
	return fmt.Sprintf(`python3 -c 'import socket;f=socket.create_connection(("%s",%s)).makefile("rwb");rd=lambda:next(l for l in iter(f.readline,b"") if print(l.decode().rstrip()) or l[:2] in (b"OK",b"NO",b"BY"));S="%s";rd();[(f.write(c.encode()+b"\r\n"),f.flush(),rd()) for c in ["AUTHENTICATE \"PLAIN\" \"%s\"","PUTSCRIPT \"pipegate-demo\" {%%d+}\r\n%%s"%%(len(S),S),"SETACTIVE \"pipegate-demo\"","LISTSCRIPTS","LOGOUT"]]'`,
		host, port, script, plain)
}

// SieveCommand is SieveConnectCommand when sieve-connect is installed (or
// when the plain port refuses plaintext logins), else SievePythonCommand.
func (d *Demo) SieveCommand(a Account) string {
	if _, err := exec.LookPath("sieve-connect"); err == nil || !d.PlaintextAuth {
		return d.SieveConnectCommand(a)
	}
	return d.SievePythonCommand(a)
}

// WriteIntro prints what runs where, the accounts and one command per
// protocol to try.
func (d *Demo) WriteIntro(w io.Writer) {
	fmt.Fprintf(w, "pipegate demo: IMAP, POP3, ManageSieve and submission proxies in front of two in-memory mail hosts\n\n")
	auth := "plaintext login allowed (loopback demo)"
	if !d.PlaintextAuth {
		auth = "login only after STARTTLS"
	}
	fmt.Fprintf(w, "  IMAP         %-16s STARTTLS  (%s)\n", d.PlainAddr, auth)
	fmt.Fprintf(w, "  IMAP         %-16s implicit TLS (self-signed certificate)\n", d.TLSAddr)
	fmt.Fprintf(w, "  POP3         %-16s STLS\n", d.POP3Addr)
	fmt.Fprintf(w, "  POP3         %-16s implicit TLS\n", d.POP3TLSAddr)
	fmt.Fprintf(w, "  ManageSieve  %-16s STARTTLS\n", d.SieveAddr)
	fmt.Fprintf(w, "  submission   %-16s STARTTLS\n", d.SubmissionAddr)
	fmt.Fprintf(w, "  submission   %-16s implicit TLS\n", d.SubmissionTLSAddr)
	for i, b := range d.Backends {
		fmt.Fprintf(w, "  backend %d (in memory): IMAP %s  POP3 %s  ManageSieve %s  submission %s\n", i+1, b.IMAP, b.POP3, b.Sieve, b.Submission)
	}
	fmt.Fprintf(w, "\naccounts:\n")
	for _, a := range d.Accounts {
		plural := "s"
		if len(a.Subjects) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "  %-14s password %-10s on backend %d, %d message%s\n", a.User, a.Password, a.Backend+1, len(a.Subjects), plural)
	}
	fmt.Fprintf(w, "\nroute map (routes-file YAML, held in memory):\n")
	for _, line := range strings.Split(strings.TrimSpace(d.Routes), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if len(d.Accounts) > 0 {
		first, last := d.Accounts[0], d.Accounts[len(d.Accounts)-1]
		fmt.Fprintf(w, "\ntry, in another shell:\n")
		fmt.Fprintf(w, "\n# IMAP: list %s's INBOX\n%s\n", first.User, d.CurlCommand(first))
		fmt.Fprintf(w, "\n# POP3: list %s's maildrop, then read message 1 over pop3s\n%s\n%s\n", last.User, d.POP3Command(last), d.POP3TLSCommand(last, 1))
		fmt.Fprintf(w, "\n# submission: %s sends %s a message (then run the POP3 lines again)\n%s\n", first.User, last.User, d.SubmissionCommand(first, last, "Hello through pipegate"))
		fmt.Fprintf(w, "\n# ManageSieve: upload, activate and list a script of %s\n%s\n", first.User, d.SieveCommand(first))
		fmt.Fprintf(w, "\nthe same over implicit TLS: %s\n", d.CurlTLSCommand(first))
	}
	fmt.Fprintf(w, "\nmessages submitted are delivered to the demo accounts and logged. Ctrl-C stops the demo.\n")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

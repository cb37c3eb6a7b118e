package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/maild"
)

// check-config says which command runs a file: "mail" with listeners of
// other protocols, "imap" with IMAP listeners only (both commands run it);
// maild's TestMailConfigIssueFile checks the loader.
func TestMailConfigIssueFile(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.MailIssue)
	writeTestFile(t, filepath.Join(filepath.Dir(path), "routes.yaml"), configtest.MailRoutes)
	var out, errOut strings.Builder
	if code := runCheckConfig([]string{path}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok (mail config)") {
		t.Fatalf("check-config: exit %d, %q %q", code, out.String(), errOut.String())
	}
	// A file with IMAP listeners only is an imap config: both commands run it.
	imapOnly := configtest.WriteConfig(t, configtest.IMAPIssue)
	out.Reset()
	if code := runCheckConfig([]string{imapOnly}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok (imap config)") {
		t.Fatalf("check-config: exit %d, %q %q", code, out.String(), errOut.String())
	}
}

// TestIMAPCommandRefusesOtherProtocols: `pipegate imap` runs the same
// daemon, and a listener of another protocol is a config error naming its
// line; `pipegate mail` takes the file.
func TestIMAPCommandRefusesOtherProtocols(t *testing.T) {
	path := configtest.WriteConfig(t, configtest.MailIssue)
	var out, errOut strings.Builder
	code := runIMAP(context.Background(), []string{"--config", path}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, errOut.String())
	}
	for _, w := range []string{
		path + ":4: listen[1].protocol: \"pop3\": pipegate imap serves IMAP only; run pipegate mail for pop3",
		path + ":6: listen[2].protocol:", path + ":9: listen[3].protocol: \"sieve\"", path + ":13: listen[5].protocol:",
	} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
		}
	}
	if _, err := maild.Load(path, maild.CommandMail, mailProtocols); err != nil {
		t.Fatalf("pipegate mail: %v", err)
	}
	errOut.Reset()
	if code := runMail(context.Background(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage: pipegate mail --config FILE") {
		t.Fatalf("no --config: exit %d, %q", code, errOut.String())
	}
}

// TestRunMailGreetings runs `pipegate mail` in-process with a listener of
// each protocol (STARTTLS and implicit TLS) and reads each one's greeting:
// every protocol of the table is wired to its listener.
func TestRunMailGreetings(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	type lis struct {
		protocol string
		tls      bool
		greeting string // in the greeting's first line
	}
	want := []lis{
		{"imap", false, "* OK [CAPABILITY IMAP4rev1"},
		{"imap", true, "* OK [CAPABILITY IMAP4rev1"},
		{"pop3", false, "+OK pop3 here"},
		{"pop3", true, "+OK pop3 here"},
		{"sieve", false, `"IMPLEMENTATION" "sieve-test"`},
		{"submission", false, "submission here"},
		{"submission", true, "submission here"},
	}
	listen := ""
	addrs := make([]string, len(want))
	for i, l := range want {
		addrs[i] = testenv.FreeAddr(t)
		listen += fmt.Sprintf("  - addr: %s\n    protocol: %s\n    tls: %v\n", addrs[i], l.protocol, l.tls)
	}
	path := configtest.WriteConfig(t, "listen:\n"+listen+`tls:
  cert: server.crt
  key: server.key
routes_file: routes.yaml
drain_timeout: 5s
pop3:
  greeting: pop3 here
sieve:
  implementation: sieve-test
submission:
  greeting: submission here
`)
	writeTestFile(t, filepath.Join(filepath.Dir(path), "routes.yaml"), configtest.MailRoutes)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- runMail(ctx, []string{"--config", path}, &stderr, &stderr) }()
	for i, l := range want {
		waitDial(t, addrs[i], done, &stderr)
		var c net.Conn
		var err error
		if l.tls {
			c, err = tls.Dial("tcp", addrs[i], &tls.Config{InsecureSkipVerify: true})
		} else {
			c, err = net.Dial("tcp", addrs[i])
		}
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.Contains(line, l.greeting) {
			t.Errorf("%s on %s (tls %v): greeting %q, %v; want it to hold %q", l.protocol, addrs[i], l.tls, line, err, l.greeting)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	log := stderr.String()
	for _, w := range []string{"mail: listening", "protocol=pop3", "protocol=sieve", "protocol=submission", "mail: stopped"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
}

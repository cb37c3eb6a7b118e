package demo_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/demo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startDemo(t *testing.T) *demo.Demo {
	t.Helper()
	d, err := demo.Start(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// subjects logs in as a on c and returns the subjects in its INBOX.
func subjects(t *testing.T, c *imapclient.Client, a demo.Account) []string {
	t.Helper()
	defer c.Close()
	if err := c.Login(a.User, a.Password).Wait(); err != nil {
		t.Fatalf("login %s: %v", a.User, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if int(sel.NumMessages) != len(a.Subjects) {
		t.Fatalf("%s: %d messages, want %d", a.User, sel.NumMessages, len(a.Subjects))
	}
	msgs, err := c.Fetch(imapv2.SeqSetNum(1, 2, 3, 4, 5), &imapv2.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}
	return out
}

// TestEveryAccountEveryPort logs every demo account in on the plain port,
// after STARTTLS and on the implicit-TLS port, and checks each lands on
// the backend holding its messages.
func TestEveryAccountEveryPort(t *testing.T) {
	d := startDemo(t)
	if !d.PlaintextAuth {
		t.Fatal("loopback demo refuses plaintext logins")
	}
	tlsOpts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: d.CertPool(), ServerName: "127.0.0.1"}}
	for _, a := range d.Accounts {
		for _, mode := range []string{"plain", "starttls", "tls"} {
			t.Run(a.User+"/"+mode, func(t *testing.T) {
				var c *imapclient.Client
				var err error
				switch mode {
				case "plain":
					c, err = imapclient.DialInsecure(d.PlainAddr, nil)
				case "starttls":
					c, err = imapclient.DialStartTLS(d.PlainAddr, tlsOpts)
				case "tls":
					c, err = imapclient.DialTLS(d.TLSAddr, tlsOpts)
				}
				if err != nil {
					t.Fatal(err)
				}
				got := strings.Join(subjects(t, c, a), "|")
				if want := strings.Join(a.Subjects, "|"); got != want {
					t.Fatalf("subjects %q, want %q", got, want)
				}
			})
		}
	}
}

// TestWrongThenRightPassword: a failed login leaves the connection usable.
func TestWrongThenRightPassword(t *testing.T) {
	d := startDemo(t)
	c, err := imapclient.DialInsecure(d.PlainAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := d.Accounts[0]
	if err := c.Login(a.User, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login(a.User, a.Password).Wait(); err != nil {
		t.Fatalf("login after a failure: %v", err)
	}
}

// TestCurlCommand runs the printed curl commands as a shell would.
func TestCurlCommand(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	d := startDemo(t)
	run := func(cmd string, want ...string) {
		t.Helper()
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("%s: no %q in:\n%s", cmd, w, out)
			}
		}
	}
	for _, a := range d.Accounts {
		for _, cmd := range []string{d.CurlCommand(a), d.CurlTLSCommand(a)} {
			run(cmd, a.Subjects...)
		}
		run(d.POP3Command(a), fmt.Sprintf("%d ", len(a.Subjects)))
		run(d.POP3TLSCommand(a, 1), "Subject: "+a.Subjects[0])
	}
	alice, bob := d.Accounts[0], d.Accounts[2]
	run(d.SubmissionCommand(alice, bob, "Hello through pipegate"))
	run(d.SubmissionTLSCommand(alice, bob, "Hello again"))
	run(d.POP3TLSCommand(bob, len(bob.Subjects)+1), "Subject: Hello through pipegate", "Received: from ")
	run(d.POP3TLSCommand(bob, len(bob.Subjects)+2), "Subject: Hello again")
	if n := d.Delivered(); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
}

// TestSieveCommands runs the printed ManageSieve commands: the python3
// one and, when installed, sieve-connect's.
func TestSieveCommands(t *testing.T) {
	d := startDemo(t)
	var ran int
	if _, err := exec.LookPath("python3"); err == nil {
		out, err := exec.Command("sh", "-c", d.SievePythonCommand(d.Accounts[2])).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"pipegate-demo" ACTIVE`) || !strings.Contains(string(out), `OK "Logout completed"`) {
			t.Fatalf("python3 command: %v\n%s", err, out)
		}
		ran++
	}
	if _, err := exec.LookPath("sieve-connect"); err == nil {
		cmd := strings.ReplaceAll(d.SieveConnectCommand(d.Accounts[0]), "/tmp/pipegate-demo.sieve", t.TempDir()+"/demo.sieve")
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"pipegate-demo" ACTIVE`) {
			t.Fatalf("sieve-connect command: %v\n%s", err, out)
		}
		ran++
	}
	if ran == 0 {
		t.Skip("neither python3 nor sieve-connect installed")
	}
}

// TestFallback takes a free port when the asked one is busy, only with
// Fallback.
func TestFallback(t *testing.T) {
	d := startDemo(t)
	d2, err := demo.Start(demo.Options{PlainAddr: d.PlainAddr, TLSAddr: d.TLSAddr, Fallback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Shutdown(context.Background())
	if d2.PlainAddr == d.PlainAddr || d2.TLSAddr == d.TLSAddr {
		t.Fatalf("fallback kept busy addresses %s %s", d2.PlainAddr, d2.TLSAddr)
	}
	if _, err := demo.Start(demo.Options{PlainAddr: d.PlainAddr}); err == nil {
		t.Fatal("Start without Fallback on a busy address succeeded")
	}
}

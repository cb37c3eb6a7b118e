package sieve_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/sieve"
)

// TestCyrus runs the proxy in front of a real Cyrus timsieved 3.6 (users
// in its sasldb, virtual domains). Cyrus offers no XCLIENT: pipegate
// sends none, and Cyrus sees the proxy's address. What the proxy stored
// is read back from Cyrus directly.
func TestCyrus(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret", "bob@a.test": "pw", "carol@a.test": "pw3"},
		CertFile: cert, KeyFile: key,
	})
	logs := gatewaytest.NewLogs(t)
	newProxy := func(url string, backendCA *tlstest.CA) string {
		return startProxy(t, &sieve.Server{Server: gateway.Server{
			Router:             newRouter(t, url),
			TLSConfig:          pki.server,
			BackendTLS:         &tls.Config{RootCAs: backendCA.Pool()},
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
	}
	addr := newProxy("sieve://"+cy.SieveAddr, pki.ca)
	plain := b64("\x00alice@a.test\x00secret")
	script := "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"INBOX\"; }\r\n"

	t.Run("PUTSCRIPT SETACTIVE LISTSCRIPTS through the pipe", func(t *testing.T) {
		c, _ := dial(t, "127.0.0.2", addr)
		c.send(`AUTHENTICATE "PLAIN" "` + plain + "\"\r\n")
		if ok := c.response("OK"); !strings.HasPrefix(ok, "OK") {
			t.Fatalf("login: %q", ok)
		}
		// After login the capabilities are Cyrus's.
		c.send("CAPABILITY\r\n")
		if caps := c.response("OK"); !strings.Contains(caps, `"IMPLEMENTATION" "Cyrus timsieved `) || !strings.Contains(caps, `"SIEVE" "`) {
			t.Errorf("CAPABILITY after login:\n%s", caps)
		}
		c.send(fmt.Sprintf("PUTSCRIPT \"pg\" {%d+}\r\n%s\r\n", len(script), script))
		c.response("OK")
		c.send("SETACTIVE \"pg\"\r\n")
		c.response("OK")
		c.send("LISTSCRIPTS\r\n")
		if list := c.response("OK"); !strings.Contains(list, "\"pg\" ACTIVE\r\n") {
			t.Errorf("LISTSCRIPTS:\n%s", list)
		}
		c.send("LOGOUT\r\n")
		c.response("OK")
		// Read back from Cyrus directly, not through the proxy.
		if got := cyrusGetScript(t, cy.SieveAddr, "alice@a.test", "secret", "pg"); got != script {
			t.Errorf("Cyrus has %q, want %q", got, script)
		}
		cy.WaitLog(t, `sieve\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test PLAIN User logged in`)
		logs.Wait(t, "sieve: backend does not offer XCLIENT")
	})

	for i, tc := range []struct{ name, send, challenge string }{
		{"initial response literal", fmt.Sprintf("AUTHENTICATE \"PLAIN\" {%d+}\r\n%s\r\n", len(plain), plain), ""},
		{"continuation", "AUTHENTICATE \"PLAIN\"\r\n\"" + plain + "\"\r\n", "\"\"\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := dial(t, fmt.Sprintf("127.0.0.%d", 3+i), addr)
			c.send(tc.send + "LISTSCRIPTS\r\n")
			if got := c.response("OK"); !strings.HasPrefix(got, tc.challenge+"OK") {
				t.Fatalf("login: %q", got)
			}
			if list := c.response("OK"); !strings.Contains(list, "\"pg\" ACTIVE\r\n") {
				t.Errorf("LISTSCRIPTS:\n%s", list)
			}
		})
	}

	t.Run("STARTTLS on both sides", func(t *testing.T) {
		c, _ := dial(t, "127.0.0.5", newProxy("sieve+starttls://"+cy.SieveAddr, pki.ca))
		c.send("STARTTLS\r\n")
		c.response("OK")
		c.startTLS(pki.client)
		c.response("OK") // the proxy's capabilities again, over TLS
		c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00bob@a.test\x00pw") + "\"\r\nLISTSCRIPTS\r\nLOGOUT\r\n")
		c.response("OK")
		c.response("OK")
		c.response("OK")
		cy.WaitLog(t, `sieve\[\d+\]: starttls: TLSv1\.3 with cipher`)
		cy.WaitLog(t, `sieve\[\d+\]: login: localhost \[127\.0\.0\.1\] bob@a\.test PLAIN\+TLS User logged in`)
	})

	t.Run("backend certificate of an unknown CA", func(t *testing.T) {
		c, _ := dial(t, "127.0.0.6", newProxy("sieve+starttls://"+cy.SieveAddr, tlstest.NewCA(t)))
		c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00bob@a.test\x00pw") + "\"\r\n")
		if got := c.line(); !strings.HasPrefix(got, "NO (TRYLATER) ") {
			t.Errorf("login: %q", got)
		}
		logs.Wait(t, "certificate signed by unknown authority")
	})

	t.Run("sieve-connect", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "in.sieve")
		script := "require \"reject\";\nif header :contains \"subject\" \"spam\" { reject \"no\"; }\n"
		if err := os.WriteFile(local, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		sc := testenv.SieveConnect{Addr: addr, User: "carol@a.test", Password: "pw3", CAFile: pki.ca.CertFile(t), TLSName: "localhost"}
		run := func(args ...string) string {
			t.Helper()
			return sc.Run(t, args...)
		}
		run("--upload", "--localsieve", local, "--remotesieve", "sc")
		run("--activate", "--remotesieve", "sc")
		if list := run("--list"); !strings.Contains(list, `"sc" ACTIVE`) {
			t.Errorf("sieve-connect --list:\n%s", list)
		}
		got := cyrusGetScript(t, cy.SieveAddr, "carol@a.test", "pw3", "sc")
		if strings.ReplaceAll(got, "\r\n", "\n") != script {
			t.Errorf("Cyrus has %q, want %q", got, script)
		}
		cy.WaitLog(t, `sieve\[\d+\]: login: localhost \[127\.0\.0\.1\] carol@a\.test PLAIN User logged in`)
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := `AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\n"
		direct, _ := dial(t, "127.0.0.1", cy.SieveAddr)
		direct.send(wrong)
		want := direct.line()
		if !strings.HasPrefix(want, "NO ") {
			t.Fatalf("Cyrus's own answer: %q", want)
		}
		c, _ := dial(t, "127.0.0.7", addr)
		c.send(wrong)
		if got := c.line(); got != want {
			t.Errorf("wrong password: %q, want Cyrus's %q", got, want)
		}
		// The session goes on and can log in.
		c.send(`AUTHENTICATE "PLAIN" "` + plain + "\"\r\n")
		c.response("OK")
		// timsieved's line does not name the user.
		cy.WaitLog(t, `sieve\[\d+\]: badlogin: localhost \[127\.0\.0\.1\] PLAIN authentication failure`)
	})
}

// TestCyrusRequireTLS: a Cyrus with its own default, allowplaintext: no,
// offers no SASL mechanism before TLS. Routed there with sieve://, the
// login is unavailable and nothing is sent; the next backend of the
// route, the same Cyrus with sieve+starttls://, logs the client in.
func TestCyrusRequireTLS(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret"},
		CertFile: cert, KeyFile: key,
		RequireTLS: true,
	})
	newProxy := func(urls ...string) string {
		return startProxy(t, &sieve.Server{Server: gateway.Server{
			Router:             newRouter(t, urls...),
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
			AllowPlaintextAuth: true,
		}})
	}
	login := `AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00secret") + "\"\r\n"
	c, _ := dial(t, "127.0.0.2", newProxy("sieve://"+cy.SieveAddr))
	c.send(login)
	if got := c.line(); !strings.HasPrefix(got, "NO (TRYLATER) ") {
		t.Errorf("sieve:// alone: %q", got)
	}
	c, _ = dial(t, "127.0.0.3", newProxy("sieve://"+cy.SieveAddr, "sieve+starttls://"+cy.SieveAddr))
	c.send(login)
	c.response("OK")
	cy.WaitLog(t, `sieve\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test PLAIN\+TLS User logged in`)
	if strings.Contains(cy.Log(), "badlogin") {
		t.Errorf("Cyrus saw a failed login:\n%s", cy.Log())
	}
}

// cyrusGetScript logs in to timsieved at addr directly and returns the
// script name.
func cyrusGetScript(t *testing.T, addr, user, pass, name string) string {
	t.Helper()
	c, _ := dial(t, "127.0.0.1", addr)
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00"+user+"\x00"+pass) + "\"\r\n")
	c.response("OK")
	c.send(`GETSCRIPT "` + name + "\"\r\n")
	got := c.response("OK")
	// {N}\r\n<script>\r\nOK...
	_, rest, ok := strings.Cut(got, "}\r\n")
	i := strings.LastIndex(rest, "\r\nOK")
	if !ok || i < 0 {
		t.Fatalf("GETSCRIPT %s: %q", name, got)
	}
	c.send("LOGOUT\r\n")
	return rest[:i]
}

package sieve_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/sieve"
)

// TestDovecot runs the proxy in front of a real Dovecot ManageSieve
// server that trusts the proxy's address (127.0.0.1) for XCLIENT. Clients
// connect from other loopback addresses, so that Dovecot's log shows
// whose address it was told.
func TestDovecot(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret", "bob@a.test": "pw", "carol@a.test": "pw3"},
		TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile:        cert, KeyFile: key,
		Protocols: []string{testenv.Sieve},
	})
	newProxy := func(t *testing.T, url string) (string, *countingRouter) {
		r := newRouter(t, url)
		return startProxy(t, &sieve.Server{Server: gateway.Server{
			Router:             r,
			TLSConfig:          pki.server,
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
			AllowPlaintextAuth: true,
		}}), r
	}
	addr, _ := newProxy(t, "sieve://"+d.SieveAddr)
	plain := b64("\x00alice@a.test\x00secret")
	script := "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"INBOX\"; }\r\n"

	t.Run("scripts through the pipe", func(t *testing.T) {
		c, _ := dial(t, "127.0.0.2", addr)
		c.send(`AUTHENTICATE "PLAIN" "` + plain + "\"\r\n")
		if ok := c.response("OK"); !strings.HasPrefix(ok, "OK") {
			t.Fatalf("login: %q", ok)
		}
		// After login the capabilities are the backend's.
		c.send("CAPABILITY\r\n")
		if caps := c.response("OK"); !strings.Contains(caps, `Pigeonhole"`) || !strings.Contains(caps, `"SIEVE" "`) {
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
		stored, err := os.ReadFile(filepath.Join(d.Home("alice@a.test"), "sieve", "pg.sieve"))
		if err != nil || string(stored) != script {
			t.Errorf("stored script %q, %v", stored, err)
		}
		d.WaitLog(t, `managesieve-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.2, lip=127\.0\.0\.1, .*session=<[0-9a-f]{16}>`)
	})

	for i, tc := range []struct{ name, send, challenge string }{
		{"initial response literal", fmt.Sprintf("AUTHENTICATE \"PLAIN\" {%d+}\r\n%s\r\n", len(plain), plain), ""},
		{"continuation", "AUTHENTICATE \"PLAIN\"\r\n\"" + plain + "\"\r\n", "\"\"\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("127.0.0.%d", 3+i)
			c, _ := dial(t, src, addr)
			c.send(tc.send + "LISTSCRIPTS\r\n")
			if got := c.response("OK"); !strings.HasPrefix(got, tc.challenge+"OK") {
				t.Fatalf("login: %q", got)
			}
			if list := c.response("OK"); !strings.Contains(list, "\"pg\" ACTIVE\r\n") {
				t.Errorf("LISTSCRIPTS:\n%s", list)
			}
			d.WaitLog(t, `managesieve-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=`+regexp.QuoteMeta(src)+`, `)
		})
	}

	t.Run("starttls on both sides", func(t *testing.T) {
		addr, _ := newProxy(t, "sieve+starttls://"+d.SieveAddr)
		c, _ := dial(t, "127.0.0.5", addr)
		c.send("STARTTLS\r\n")
		c.response("OK")
		c.startTLS(pki.client)
		if caps := c.response("OK"); !strings.Contains(caps, `"SASL" "PLAIN LOGIN"`) || strings.Contains(caps, `"STARTTLS"`) {
			t.Errorf("capabilities after STARTTLS:\n%s", caps)
		}
		c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00bob@a.test\x00pw") + "\"\r\nLOGOUT\r\n")
		c.response("OK")
		c.response("OK")
		d.WaitLog(t, `managesieve-login: Info: Login: user=<bob@a.test>, method=PLAIN, rip=127\.0\.0\.5, lip=127\.0\.0\.1, .*TLS`)
	})

	// An IPv6 client address goes in XCLIENT as Dovecot's own proxy sends
	// it: ADDR=2001:db8::2, without Postfix's "IPV6:" prefix, which
	// Dovecot's ManageSieve refuses.
	t.Run("ipv6 client", func(t *testing.T) {
		l, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no ::1: %v", err)
		}
		addr := serveProxy(t, &sieve.Server{Server: gateway.Server{Router: newRouter(t, "sieve://"+d.SieveAddr), AllowPlaintextAuth: true}}, l)
		c, _ := dial(t, "::1", addr)
		c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00bob@a.test\x00pw") + "\"\r\n")
		c.response("OK")
		d.WaitLog(t, `managesieve-login: Info: Login: user=<bob@a\.test>, method=PLAIN, rip=::1, lip=127\.0\.0\.1, `)
	})

	t.Run("sieve-connect", func(t *testing.T) {
		dir := t.TempDir()
		local := filepath.Join(dir, "in.sieve")
		script := "require \"reject\";\nif header :contains \"subject\" \"spam\" { reject \"no\"; }\n"
		if err := os.WriteFile(local, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		caFile := pki.ca.CertFile(t)
		sc := testenv.SieveConnect{Addr: addr, User: "carol@a.test", Password: "pw3", CAFile: caFile, TLSName: "localhost"}
		run := func(args ...string) string {
			t.Helper()
			return sc.Run(t, args...)
		}
		run("--upload", "--localsieve", local, "--remotesieve", "sc")
		run("--activate", "--remotesieve", "sc")
		if list := run("--list"); !strings.Contains(list, `"sc" ACTIVE`) {
			t.Errorf("sieve-connect --list:\n%s", list)
		}
		// Read back from Dovecot directly, not through the proxy.
		stored, err := os.ReadFile(filepath.Join(d.Home("carol@a.test"), "sieve", "sc.sieve"))
		if err != nil || strings.ReplaceAll(string(stored), "\r\n", "\n") != script {
			t.Errorf("stored script %q, %v; want %q", stored, err, script)
		}
		d.WaitLog(t, `managesieve-login: Info: Login: user=<carol@a.test>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, `)
	})

	// Last: Dovecot delays further logins from an address that failed.
	t.Run("wrong password", func(t *testing.T) {
		c, _ := dial(t, "127.0.0.6", addr)
		c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\n")
		if got := c.line(); got != "NO \"Authentication failed.\"\r\n" {
			t.Errorf("wrong password: %q", got)
		}
		// The session goes on (a second login would wait for Dovecot's
		// penalty of this address).
		c.send("NOOP\r\n")
		c.response("OK")
		d.WaitLog(t, `managesieve-login: Info: Disconnected: .*auth failed.*user=<alice@a\.test>, method=PLAIN, rip=127\.0\.0\.6, `)
	})
}

package imap_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestCyrus runs the proxy in front of a real Cyrus IMAP 3.6 (imapd with
// idled, users in its sasldb, virtual domains). Clients connect from
// their own loopback addresses, so that what pipegate told Cyrus (the ID
// it sends before the login, which Cyrus logs but does not take as the
// client's address) is told apart from the proxy's own address.
func TestCyrus(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users: map[string]string{
			"alice@a.test": "secret", "bob@a.test": "pw-bob", "carol@a.test": "pw-carol", "dave@a.test": "pw-dave",
		},
		Messages: map[string][]string{"alice@a.test": {"Subject: first\r\n\r\nhello\r\n"}},
		CertFile: cert, KeyFile: key,
	})
	logs := gatewaytest.NewLogs(t)
	newProxy := func(url string, backendCA *tlstest.CA) *proxy {
		return startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": {url}}),
			BackendTLS:         &tls.Config{RootCAs: backendCA.Pool()},
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
	}
	p := newProxy("imap://"+cy.IMAPAddr, pki.ca)

	t.Run("LOGIN gets Cyrus's capabilities", func(t *testing.T) {
		// What Cyrus itself answers to the login.
		direct := cyrusRaw(t, "127.0.0.1", cy.IMAPAddr)
		direct.send("a LOGIN alice@a.test secret\r\n")
		want := direct.expectPrefix("a ")
		if !strings.HasPrefix(want, "a OK [CAPABILITY IMAP4rev1 ") || !strings.Contains(want, " X-SIEVE-MAILBOX ") {
			t.Fatalf("Cyrus's own answer: %q", want)
		}
		// The same through the proxy, but for Cyrus's session id.
		c := cyrusRaw(t, "127.0.0.2", p.addr)
		c.send("a ID (\"name\" \"pipegate-cyrus-test\")\r\n")
		c.expectPrefix("a OK")
		c.send("b LOGIN alice@a.test secret\r\n")
		got := c.expectPrefix("b ")
		sessionID := regexp.MustCompile(`SESSIONID=<[^>]*>`)
		if g, w := sessionID.ReplaceAllString(got[2:], ""), sessionID.ReplaceAllString(want[2:], ""); g != w {
			t.Errorf("through the proxy:\n%q, want Cyrus's\n%q", got, want)
		}
		c.send("c LOGOUT\r\n")
		c.expectPrefix("c OK")
		id := regexp.QuoteMeta(cyrusSessionID(t, got))
		cy.WaitLog(t, `imap\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test plaintext User logged in SESSIONID=<`+id+`>`)
		// Cyrus logs the ID pipegate sent before the login: the client's
		// address, and the client's own ID fields after pipegate's.
		cy.WaitLog(t, `imap\[\d+\]: client id sessionid=<`+id+`>: "x-session-id" "[0-9a-f]{16}" "x-originating-ip" "127\.0\.0\.2" "x-originating-port" "\d+" "x-connected-ip" "127\.0\.0\.1" "x-connected-port" "\d+" "x-proxy-ttl" "4" "name" "pipegate-cyrus-test"`)

		// go-imap's client sees the same list after its login.
		ic := cyrusClient(t, "127.0.0.2", p.addr, nil)
		if err := ic.Login("alice@a.test", "secret").Wait(); err != nil {
			t.Fatal(err)
		}
		var seen []string
		for name := range ic.Caps() {
			seen = append(seen, strings.ToUpper(string(name)))
		}
		slices.Sort(seen)
		if w := capNames(want); !slices.Equal(seen, w) {
			t.Errorf("client's capabilities after login:\n%q, want Cyrus's\n%q", seen, w)
		}
	})

	t.Run("AUTHENTICATE PLAIN", func(t *testing.T) {
		ic := cyrusClient(t, "127.0.0.3", p.addr, nil)
		if err := ic.Authenticate(saslPlain{"bob@a.test", "pw-bob"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		cy.WaitLog(t, `client id .*"x-originating-ip" "127\.0\.0\.3"`)
	})

	t.Run("SELECT APPEND FETCH and IDLE", func(t *testing.T) {
		exists := make(chan uint32, 8)
		idler := cyrusClient(t, "127.0.0.4", p.addr, &imapclient.Options{
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						exists <- *d.NumMessages
					}
				},
			},
		})
		if err := idler.Login("alice@a.test", "secret").Wait(); err != nil {
			t.Fatal(err)
		}
		sel, err := idler.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages != 1 {
			t.Fatalf("SELECT: %d messages, want the one delivered", sel.NumMessages)
		}
		idle, err := idler.Idle()
		if err != nil {
			t.Fatal(err)
		}

		// An APPEND through the proxy, from another session.
		msg := []byte("From: bob@a.test\r\nTo: alice@a.test\r\nSubject: appended\r\n\r\n" + strings.Repeat("line through the pipe\r\n", 2000))
		c := cyrusClient(t, "127.0.0.5", p.addr, nil)
		if err := c.Login("alice@a.test", "secret").Wait(); err != nil {
			t.Fatal(err)
		}
		app := c.Append("INBOX", int64(len(msg)), nil)
		if _, err := app.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		if data, err := app.Wait(); err != nil || data.UID == 0 {
			t.Fatalf("APPEND: %v (APPENDUID %+v)", err, data)
		}
		waitExists(t, exists, 2)
		// A delivery by Cyrus's LMTP reaches the idling client too.
		if err := cy.Deliver("alice@a.test", "Subject: delivered\r\n\r\nby lmtp\r\n"); err != nil {
			t.Fatal(err)
		}
		waitExists(t, exists, 3)
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}

		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		body := &goimap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(goimap.SeqSetNum(2), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{body}}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
		}
		if got := msgs[0].FindBodySection(body); !bytes.Equal(got, msg) {
			t.Fatalf("FETCH gave %d bytes, want the %d appended", len(got), len(msg))
		}
		if err := c.Logout().Wait(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("backend STARTTLS and imaps", func(t *testing.T) {
		for _, tc := range []struct{ url, src string }{
			{"imap+starttls://" + cy.IMAPAddr, "127.0.0.6"},
			{"imaps://" + cy.IMAPSAddr, "127.0.0.7"},
		} {
			tp := newProxy(tc.url, pki.ca)
			c := cyrusRaw(t, tc.src, tp.addr)
			c.send("a LOGIN carol@a.test pw-carol\r\nb SELECT INBOX\r\n")
			if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK [CAPABILITY IMAP4rev1 ") {
				t.Fatalf("%s: login: %q", tc.url, l)
			}
			c.expectPrefix("b OK")
			cy.WaitLog(t, `client id .*"x-originating-ip" "`+regexp.QuoteMeta(tc.src)+`"`)
		}
		cy.WaitLog(t, `imap\[\d+\]: starttls: TLSv1\.3 with cipher`)
		cy.WaitLog(t, `imap\[\d+\]: login: localhost \[127\.0\.0\.1\] carol@a\.test plaintext\+TLS User logged in`)
		cy.WaitLog(t, `imaps\[\d+\]: login: localhost \[127\.0\.0\.1\] carol@a\.test plaintext\+TLS User logged in`)
	})

	t.Run("backend certificate of an unknown CA", func(t *testing.T) {
		for _, url := range []string{"imap+starttls://" + cy.IMAPAddr, "imaps://" + cy.IMAPSAddr} {
			tp := newProxy(url, tlstest.NewCA(t))
			c := cyrusRaw(t, "127.0.0.8", tp.addr)
			c.send("a LOGIN dave@a.test pw-dave\r\n")
			if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
				t.Fatalf("%s: login: %q", url, l)
			}
		}
		logs.Wait(t, "certificate signed by unknown authority")
		if log := cy.Log(); strings.Contains(log, "dave@a.test plaintext+TLS") || strings.Contains(log, `"127.0.0.8"`) {
			t.Errorf("Cyrus saw dave's login over TLS the proxy did not trust:\n%s", log)
		}
	})

	t.Run("client_addr=none sends no ID", func(t *testing.T) {
		tp := newProxy("imap://"+cy.IMAPAddr+"?client_addr=none", pki.ca)
		c := cyrusRaw(t, "127.0.0.9", tp.addr)
		c.send("a LOGIN dave@a.test pw-dave\r\n")
		l := c.expectPrefix("a ")
		if !strings.HasPrefix(l, "a OK [CAPABILITY ") {
			t.Fatalf("login: %q", l)
		}
		id := cyrusSessionID(t, l)
		cy.WaitLog(t, `login: localhost \[127\.0\.0\.1\] dave@a\.test plaintext User logged in SESSIONID=<`+regexp.QuoteMeta(id)+`>`)
		if log := cy.Log(); strings.Contains(log, "client id sessionid=<"+id+">") || strings.Contains(log, `"127.0.0.9"`) {
			t.Errorf("Cyrus was told the client's address:\n%s", log)
		}
	})

	// Cyrus takes no PROXY header: v2's binary header leaves imapd
	// waiting for the rest of a command, and the login is unavailable at
	// the backend timeout. Not for Cyrus backends.
	t.Run("client_addr=proxy is not for Cyrus", func(t *testing.T) {
		tp := startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": {"imap://" + cy.IMAPAddr + "?client_addr=proxy"}}),
			AllowPlaintextAuth: true,
			BackendTimeout:     300 * time.Millisecond,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
		c := cyrusRaw(t, "127.0.0.11", tp.addr)
		c.send("a LOGIN dave@a.test pw-dave\r\n")
		if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
			t.Fatalf("login: %q", l)
		}
		logs.Wait(t, "i/o timeout")
	})

	t.Run("wrong password", func(t *testing.T) {
		direct := cyrusRaw(t, "127.0.0.1", cy.IMAPAddr)
		direct.send("a LOGIN alice@a.test wrong\r\n")
		if l := direct.expectPrefix("a "); l != "a NO Login failed: authentication failure" {
			t.Fatalf("Cyrus's own answer: %q", l)
		}
		// Cyrus's text, relayed with the RFC 5530 code pipegate adds.
		want := "NO [AUTHENTICATIONFAILED] Login failed: authentication failure"
		c := cyrusRaw(t, "127.0.0.10", p.addr)
		c.send("a LOGIN alice@a.test wrong\r\n")
		if l := c.expectPrefix("a "); l != "a "+want {
			t.Errorf("wrong password: %q", l)
		}
		c.send("b AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00wrong")) + "\r\n")
		if l := c.expectPrefix("b "); l != "b "+want {
			t.Errorf("wrong password in AUTHENTICATE PLAIN: %q", l)
		}
		// The session goes on and can log in.
		c.send("c LOGIN alice@a.test secret\r\n")
		if l := c.expectPrefix("c "); !strings.HasPrefix(l, "c OK [CAPABILITY ") {
			t.Errorf("login after the failures: %q", l)
		}
		cy.WaitLog(t, `badlogin: localhost \[127\.0\.0\.1\] plaintext \(alice@a\.test\) \[SASL\(-13\): authentication failure: checkpass failed\]`)
	})
}

// cyrusSessionID returns the SESSIONID=<...> of Cyrus's answer to a
// login, which its log lines of that session name.
func cyrusSessionID(t *testing.T, answer string) string {
	t.Helper()
	m := regexp.MustCompile(`SESSIONID=<([^>]+)>`).FindStringSubmatch(answer)
	if m == nil {
		t.Fatalf("no SESSIONID in %q", answer)
	}
	return m[1]
}

// capNames returns the names in the [CAPABILITY ...] code of an IMAP
// response line, upper-cased as go-imap keeps them.
func capNames(line string) []string {
	_, rest, _ := strings.Cut(line, "[CAPABILITY ")
	list, _, _ := strings.Cut(rest, "]")
	names := strings.Fields(strings.ToUpper(list))
	slices.Sort(names)
	return slices.Compact(names)
}

// waitExists waits (at most 10 s) for an EXISTS of n messages.
func waitExists(t *testing.T, exists <-chan uint32, n uint32) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-exists:
			if got == n {
				return
			}
		case <-timeout:
			t.Fatalf("no EXISTS of %d messages while idling", n)
		}
	}
}

// cyrusRaw is dialRaw from the loopback address src.
func cyrusRaw(t *testing.T, src, addr string) *rawClient {
	t.Helper()
	conn := cyrusDial(t, src, addr)
	rc := &rawClient{t: t, conn: conn, r: newLineReader(conn)}
	rc.expectPrefix("* OK ")
	return rc
}

// cyrusClient is a go-imap client connected from the loopback address src.
func cyrusClient(t *testing.T, src, addr string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c := imapclient.New(cyrusDial(t, src, addr), opts)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return c
}

func cyrusDial(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn
}

// TestCyrusRequireTLS: a Cyrus with its own default, allowplaintext: no,
// takes passwords only over TLS, and says so on a plain connection
// (LOGINDISABLED, no AUTH=PLAIN). Routed there with imap://, the login is
// unavailable (the route is wrong, not the password), and the password is
// not sent in clear; the next backend of the route, the same Cyrus with
// imap+starttls://, logs the client in.
func TestCyrusRequireTLS(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret"},
		CertFile: cert, KeyFile: key,
		RequireTLS: true,
	})
	logs := gatewaytest.NewLogs(t)
	newProxy := func(urls ...string) *proxy {
		return startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": urls}),
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
	}

	t.Run("imap:// alone", func(t *testing.T) {
		c := cyrusRaw(t, "127.0.0.2", newProxy("imap://"+cy.IMAPAddr).addr)
		c.send("a LOGIN alice@a.test secret\r\n")
		if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
			t.Errorf("login: %q", l)
		}
		logs.Wait(t, "LOGINDISABLED")
	})

	t.Run("imap:// then imap+starttls://", func(t *testing.T) {
		c := cyrusRaw(t, "127.0.0.3", newProxy("imap://"+cy.IMAPAddr, "imap+starttls://"+cy.IMAPAddr).addr)
		c.send("a LOGIN alice@a.test secret\r\n")
		if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK [CAPABILITY IMAP4rev1 ") {
			t.Errorf("login: %q", l)
		}
		cy.WaitLog(t, `imap\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test plaintext\+TLS User logged in`)
	})
	if strings.Contains(cy.Log(), "badlogin") {
		t.Errorf("Cyrus saw a failed login:\n%s", cy.Log())
	}
}

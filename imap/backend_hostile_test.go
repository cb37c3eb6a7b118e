package imap_test

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// oneBackend routes every account to the backend url.
func oneBackend(t *testing.T, url string) route.Router {
	t.Helper()
	b, err := route.ParseBackend(url)
	if err != nil {
		t.Fatal(err)
	}
	return route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		return route.Route{Backends: []route.Backend{b}}, nil
	})
}

// TestBackendBrokenDialogue: a backend that breaks the login dialogue
// (no greeting, an endless or refusing one, continuation requests nobody
// asked for, a STARTTLS it refuses or follows with injected plaintext,
// or TLS it cannot prove) makes the login unavailable: the client gets NO
// [UNAVAILABLE] as soon as the dialogue is known to be broken (at the
// BackendTimeout for a silent backend; else at once, or the client's own
// deadline fails the test), the failure is counted, and no credentials
// went to a backend that was to be on TLS.
func TestBackendBrokenDialogue(t *testing.T) {
	pki := newPKI(t)
	greeting := "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] fake\r\n"
	for _, tc := range []struct {
		name    string
		scheme  string
		timeout time.Duration // BackendTimeout, long unless the case waits for it
		script  func(fc *fakeConn)
	}{
		{"no greeting", "imap", 100 * time.Millisecond, func(fc *fakeConn) { _, _ = fc.br.ReadByte() }},
		{"greeting over the limit without a line end", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK " + strings.Repeat("x", 2<<20))
		}},
		{"BYE greeting", "imap", time.Hour, func(fc *fakeConn) { fc.send("* BYE not today\r\n") }},
		{"PREAUTH greeting", "imap", time.Hour, func(fc *fakeConn) { fc.send("* PREAUTH no login needed\r\n") }},
		{"CAPABILITY response over the limit", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK fake\r\n")
			fc.cmd()
			fc.send("* CAPABILITY IMAP4rev1 {100000}\r\n" + strings.Repeat("x", 100000))
		}},
		{"untagged responses for ever", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
			fc.cmd()
			// Refused once past the bound, not read as long as the
			// backend sends: no tagged answer comes.
			fc.send(strings.Repeat("* OK still thinking\r\n", 1000))
		}},
		{"CAPABILITY answered by untagged responses for ever", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK fake\r\n")
			fc.cmd()
			fc.send(strings.Repeat("* CAPABILITY IMAP4rev1\r\n", 1000))
		}},
		{"continuation for LOGIN", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
			fc.cmd()
			fc.send("+ go on\r\n")
		}},
		{"continuations for ever", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] fake\r\n")
			for range 100 {
				if _, err := fc.br.ReadString('\n'); err != nil {
					return
				}
				fc.send("+ \r\n")
			}
		}},
		{"OK to AUTHENTICATE before the credentials", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] fake\r\n") // no SASL-IR
			if c := fc.cmd(); c != nil {
				fc.send(c.Tag + " OK Logged in\r\n")
			}
		}},
		{"closed during LOGIN", "imap", time.Hour, func(fc *fakeConn) {
			fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
			fc.cmd()
			fc.c.Close()
		}},
		{"STARTTLS refused", "imap+starttls", time.Hour, func(fc *fakeConn) {
			fc.send(greeting)
			c := fc.cmd()
			fc.send(c.Tag + " NO not today\r\n")
		}},
		{"STARTTLS followed by plaintext", "imap+starttls", time.Hour, func(fc *fakeConn) {
			fc.send(greeting)
			c := fc.cmd()
			// The injection of CVE-2011-0411: what follows the OK in the
			// same packet must not pass for the answer to the command
			// sent after the handshake.
			fc.send(c.Tag + " OK Begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\npg2 OK done\r\n")
		}},
		{"STARTTLS without TLS", "imap+starttls", time.Hour, func(fc *fakeConn) {
			fc.send(greeting)
			c := fc.cmd()
			fc.send(c.Tag + " OK Begin TLS\r\n")
			if _, err := fc.br.ReadByte(); err != nil { // the ClientHello has come
				return
			}
			fc.send("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\npg2 OK done\r\n")
		}},
		{"STARTTLS with an unknown CA", "imap+starttls", time.Hour, func(fc *fakeConn) {
			fc.send(greeting)
			c := fc.cmd()
			fc.send(c.Tag + " OK Begin TLS\r\n")
			_ = tls.Server(fc.c, newPKI(t).server).Handshake()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 100)
			fb := startFake(t, func(fc *fakeConn) {
				// Past the client's 20 s: a proxy that waits on the
				// backend fails the test at the client's deadline.
				_ = fc.c.SetDeadline(time.Now().Add(time.Minute))
				fc.rd = wire.NewReader(fc.br) // no continuation: a literal is refused
				tc.script(fc)
				for {
					l, err := fc.br.ReadString('\n')
					if err != nil {
						return
					}
					got <- l
				}
			})
			reg := prometheus.NewRegistry()
			p := startProxy(t, &imap.Server{Server: gateway.Server{
				Router:             oneBackend(t, tc.scheme+"://"+fb.addr+"?id=0"),
				AllowPlaintextAuth: true,
				BackendTimeout:     tc.timeout,
				BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
				Metrics:            imap.NewMetrics(reg),
			}})
			c := dialRaw(t, p.addr)
			c.send("a LOGIN alice@a.test secret\r\n")
			if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
				t.Errorf("login: %q", l)
			}
			if n := gather(t, reg)["pipegate_imap_logins_total{unavailable}"]; n != 1 {
				t.Errorf("logins counted unavailable: %v, want 1", n)
			}
			c.conn.Close()
			for l := range drain(got) {
				if strings.Contains(l, "secret") || strings.Contains(l, "AUTHENTICATE") {
					t.Errorf("the backend got %q", l)
				}
			}
		})
	}
}

// drain returns what ch holds now.
func drain(ch chan string) chan string {
	out := make(chan string, cap(ch))
	for {
		select {
		case l := <-ch:
			out <- l
		default:
			close(out)
			return out
		}
	}
}

// TestBackendOKBeforeLiteral: a backend that answers OK to a LOGIN whose
// password literal it has not had (no "+" was sent) has not checked the
// password: that is a broken backend, not a login.
func TestBackendOKBeforeLiteral(t *testing.T) {
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n") // no LITERAL+
		l, err := fc.br.ReadString('\n')
		if err != nil {
			return
		}
		tag, _, _ := strings.Cut(l, " ")
		fc.send(tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
		fc.serveAfterLogin()
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{
		Router: oneBackend(t, "imap://"+fb.addr+"?id=0"), AllowPlaintextAuth: true,
	}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test {7+}\r\ns\u00e9cret\r\n") // 8-bit: a literal
	if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
		t.Errorf("login: %q", l)
	}
}

// TestBackendDataAfterLogin: what a backend sends after its OK to the
// login reaches the client after the client's OK, in order and as sent,
// both when the OK carries the capabilities and when the proxy has to
// ask for them (the backend's unsolicited responses before the answer to
// that CAPABILITY are the client's, not the proxy's).
func TestBackendDataAfterLogin(t *testing.T) {
	after := "* OK [ALERT] Mailbox almost full\r\n* 3 EXISTS\r\n"
	for _, tc := range []struct {
		name, ok string
		ask      bool
	}{
		{"capabilities in the OK", " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n" + after, false},
		{"capabilities asked for", " OK Logged in\r\n" + after, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := startFake(t, func(fc *fakeConn) {
				fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
				c := fc.cmd()
				if c == nil {
					return
				}
				fc.send(c.Tag + tc.ok)
				if tc.ask {
					if c = fc.cmd(); c == nil || c.Name != "CAPABILITY" {
						t.Errorf("after the login the proxy sent %+v, want CAPABILITY", c)
						return
					}
					fc.send("* CAPABILITY IMAP4rev1 IDLE\r\n" + c.Tag + " OK done\r\n")
				}
				fc.serveAfterLogin()
			})
			p := startProxy(t, &imap.Server{Server: gateway.Server{
				Router: oneBackend(t, "imap://"+fb.addr+"?id=0"), AllowPlaintextAuth: true,
			}})
			c := dialRaw(t, p.addr)
			c.send("a LOGIN alice@a.test secret\r\n")
			if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in" {
				t.Errorf("login: %q", l)
			}
			for _, want := range strings.Split(strings.TrimSuffix(after, "\r\n"), "\r\n") {
				if l := c.line(); l != want {
					t.Errorf("after the OK: %q, want %q", l, want)
				}
			}
			c.send("b NOOP\r\n")
			if l := c.line(); l != "b OK NOOP done by fake" {
				t.Errorf("NOOP: %q", l)
			}
		})
	}
}

// TestBackendCapabilitiesToClient: the backend's post-login capabilities
// reach the client whole, however many (Dovecot's with a few plugins pass
// 400 bytes), and one that is not an atom (a "]" would end the response
// code, a control byte has no place there) is left out rather than sent.
func TestBackendCapabilitiesToClient(t *testing.T) {
	dovecot := "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS " +
		"THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED " +
		"I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE " +
		"SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE QUOTA COMPRESS=DEFLATE"
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
		c := fc.cmd()
		if c == nil {
			return
		}
		fc.send(c.Tag + " OK Logged in\r\n")
		if c = fc.cmd(); c == nil {
			return
		}
		fc.send("* CAPABILITY " + dovecot + " X]INJECTED X\x01CTL\r\n" + c.Tag + " OK done\r\n")
		fc.serveAfterLogin()
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{
		Router: oneBackend(t, "imap://"+fb.addr+"?id=0"), AllowPlaintextAuth: true,
	}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test secret\r\n")
	if l, want := c.expectPrefix("a "), "a OK [CAPABILITY "+dovecot+"] Logged in"; l != want {
		t.Errorf("login:\n%q, want\n%q", l, want)
	}
}

// TestBackendRefusesID: a backend that refuses the ID carrying the
// client's address (NO or BAD) is still logged in to: it sees the proxy's
// address, and the client its OK.
func TestBackendRefusesID(t *testing.T) {
	for _, answer := range []string{"NO not trusted", "BAD unknown command"} {
		t.Run(answer, func(t *testing.T) {
			fb := startFake(t, func(fc *fakeConn) {
				fc.send("* OK [CAPABILITY IMAP4rev1 ID LITERAL+] fake\r\n")
				for {
					c := fc.cmd()
					if c == nil {
						return
					}
					if c.Name == "ID" {
						fc.send(c.Tag + " " + answer + "\r\n")
						continue
					}
					fc.send(c.Tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
					fc.serveAfterLogin()
					return
				}
			})
			p := startProxy(t, &imap.Server{Server: gateway.Server{
				Router: oneBackend(t, "imap://"+fb.addr), AllowPlaintextAuth: true,
			}})
			c := dialRaw(t, p.addr)
			c.send("a LOGIN alice@a.test secret\r\n")
			if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in" {
				t.Errorf("login: %q", l)
			}
		})
	}
}

// TestBackendCapabilitiesBounded: a login OK with a huge CAPABILITY code
// (up to the 64 KiB of a response) gives the client at most 4 KiB of it,
// in whole capabilities.
func TestBackendCapabilitiesBounded(t *testing.T) {
	var caps []string
	for i := range 6000 {
		caps = append(caps, "X"+strings.Repeat("0", 4-len(strconv.Itoa(i)))+strconv.Itoa(i))
	}
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1] fake\r\n")
		c := fc.cmd()
		if c == nil {
			return
		}
		fc.send(c.Tag + " OK [CAPABILITY IMAP4rev1 " + strings.Join(caps, " ") + "] Logged in\r\n")
		fc.serveAfterLogin()
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{
		Router: oneBackend(t, "imap://"+fb.addr+"?id=0"), AllowPlaintextAuth: true,
	}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test secret\r\n")
	l := c.expectPrefix("a ")
	code, _, ok := strings.Cut(strings.TrimPrefix(l, "a OK [CAPABILITY "), "] ")
	if !ok || len(code) > 4096 {
		t.Fatalf("login: %d bytes: %.100q...", len(l), l)
	}
	got := strings.Fields(code)
	if want := append([]string{"IMAP4rev1"}, caps[:len(got)-1]...); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("capabilities %.200q..., want the first whole ones", code)
	}
	if len(got) < 500 {
		t.Errorf("only %d capabilities", len(got))
	}
}

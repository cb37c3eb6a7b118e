package imap_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
)

// oauthIMAPClient is python3's imaplib logging in with AUTHENTICATE and a
// callback (no SASL-IR: the message goes after the first "+"), as
// Thunderbird-style OAuth clients do; it connects from a source address of
// its own. The answer to a second challenge (the server's error) is the
// last argument: "empty" (XOAUTH2's acknowledgement), "ctrl-a"
// (OAUTHBEARER's, RFC 7628 section 3.2.3) or "cancel" ("*").
const oauthIMAPClient = `
import imaplib, socket, sys
host, port, src, mech, user, token, ack = sys.argv[1:8]

class C(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))

def message():
    if mech == "XOAUTH2":
        return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    esc = user.replace("=", "=3D").replace(",", "=2C")
    return "n,a=%s,\x01host=127.0.0.1\x01port=%s\x01auth=Bearer %s\x01\x01" % (esc, port, token)

calls = []
def answer(challenge):
    calls.append(challenge)
    if len(calls) == 1:
        return message().encode()
    print("CHALLENGE " + challenge.decode(), flush=True)
    return {"empty": b"", "ctrl-a": b"\x01", "cancel": None}[ack]

c = C(host, int(port), timeout=20)
try:
    typ, data = c.authenticate(mech, answer)
    print("AUTH " + typ, flush=True)
    typ, data = c.select("INBOX")
    print("SELECT %s %s" % (typ, data[0].decode()), flush=True)
    c.logout()
except imaplib.IMAP4.error as e:
    print("ERROR " + str(e), flush=True)
`

// oauthEnv is a gateway with OAuth on, in front of a Dovecot whose
// oauth2 passdb asks an in-process introspection endpoint.
type oauthEnv struct {
	d      *testenv.Dovecot
	tokens *testenv.OAuth2Server
	p      *proxy
	reg    *prometheus.Registry
	store  limit.PenaltyStore
	logs   *gatewaytest.Logs
	python string
	script string
}

func startOAuthEnv(t *testing.T) *oauthEnv {
	t.Helper()
	python := testenv.LookPath(t, "python3", "python3")
	e := &oauthEnv{python: python, reg: prometheus.NewRegistry(), store: limit.NewMemoryStore(0), logs: gatewaytest.NewLogs(t)}
	e.tokens = testenv.StartOAuth2Server(t, testenv.IntrospectPost)
	e.d = testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret-a", "bob@a.test": "secret-b"},
		Messages:        map[string][]string{"alice@a.test": {"Subject: one\r\n\r\nhello\r\n"}, "bob@a.test": {"Subject: 1\r\n\r\n1\r\n", "Subject: 2\r\n\r\n2\r\n"}},
		TrustedNetworks: []string{"127.0.0.1/32"}, // the gateway passes the client's address in ID
	}, testenv.OAuth2Options{Server: e.tokens, Passwords: true})
	e.p = startProxy(t, &imap.Server{Server: gateway.Server{
		Router:             oneBackend(t, "imap://"+e.d.Addr),
		AllowPlaintextAuth: true,
		OAuth:              true,
		Metrics:            gateway.NewMetrics(e.reg, "imap"),
		Penalty:            &limit.Penalty{Store: e.store, Base: time.Nanosecond, Max: time.Nanosecond},
		Logger:             slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	e.script = filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(e.script, []byte(oauthIMAPClient), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// login runs the python client from src and returns its output lines.
func (e *oauthEnv) login(t *testing.T, src, mech, user, token, ack string) []string {
	t.Helper()
	return e.loginAt(t, e.p.addr, src, mech, user, token, ack)
}

// loginAt is login to the gateway at addr.
func (e *oauthEnv) loginAt(t *testing.T, addr, src, mech, user, token, ack string) []string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.python, e.script, host, port, src, mech, user, token, ack).CombinedOutput()
	if err != nil {
		t.Fatalf("python imaplib: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestOAuthDovecot: XOAUTH2 and OAUTHBEARER through the gateway to a real
// Dovecot that checks tokens (oauth2 passdb, introspection): the backend
// logs in the account the gateway decided, gets the token as the client
// sent it (a 4 KiB JWT too), and its error challenge for a refused token
// reaches the client, whose acknowledgement or cancel ends in the
// protocol's refusal, counted as a failed login, with nothing logged in.
func TestOAuthDovecot(t *testing.T) {
	e := startOAuthEnv(t)
	e.tokens.AddToken("tok-alice", "alice@a.test")
	e.tokens.AddToken("tok-bob", "bob@a.test")
	jwt := testenv.LongJWT("alice", 4<<10)
	e.tokens.AddToken(jwt, "alice@a.test")
	e.tokens.FailToken("tok-down")

	okCases := []struct {
		name, src, mech, user, token, select_ string
	}{
		{"xoauth2", "127.0.0.11", "XOAUTH2", "alice@a.test", "tok-alice", "SELECT OK 1"},
		{"oauthbearer", "127.0.0.12", "OAUTHBEARER", "bob@a.test", "tok-bob", "SELECT OK 2"},
		{"xoauth2-long-jwt", "127.0.0.13", "XOAUTH2", "alice@a.test", jwt, "SELECT OK 1"},
		{"oauthbearer-long-jwt", "127.0.0.14", "OAUTHBEARER", "alice@a.test", jwt, "SELECT OK 1"},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.tokens.Tokens())
			out := e.login(t, tc.src, tc.mech, tc.user, tc.token, "cancel")
			if !slices.Equal(out, []string{"AUTH OK", tc.select_}) {
				t.Fatalf("client said %q, want [AUTH OK %q]", out, tc.select_)
			}
			e.d.WaitLog(t, `imap-login: Info: Login: user=<`+regexp.QuoteMeta(tc.user)+`>, method=`+tc.mech+`, rip=`+regexp.QuoteMeta(tc.src)+`,`)
			if got := e.tokens.Tokens()[before:]; !slices.Equal(got, []string{tc.token}) {
				t.Errorf("the introspection endpoint got %d tokens (lengths %v), want the client's one (%d bytes) as sent", len(got), lengths(got), len(tc.token))
			}
			e.logs.WaitSession(t, tc.src, tc.user)
		})
	}

	failCases := []struct {
		name, src, mech, user, token, ack string
		challenge, answer, dovecot        string
	}{
		{"xoauth2-expired-ack", "127.0.0.21", "XOAUTH2", "alice@a.test", "expired", "empty",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "ERROR [AUTHENTICATIONFAILED] Authentication failed.",
			`Provided token is not valid`},
		{"xoauth2-expired-cancel", "127.0.0.22", "XOAUTH2", "alice@a.test", "expired2", "cancel",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "ERROR AUTHENTICATE command error: BAD [b'AUTHENTICATE cancelled']",
			`Provided token is not valid`},
		{"oauthbearer-expired-ack", "127.0.0.23", "OAUTHBEARER", "alice@a.test", "expired3", "ctrl-a",
			`{"status":"invalid_token"}`, "ERROR [AUTHENTICATIONFAILED] Authentication failed.",
			`Provided token is not valid`},
		// Bob's token in Alice's name: Dovecot checks the token's user
		// against the name the gateway decided and sent, and refuses.
		{"xoauth2-other-users-token", "127.0.0.24", "XOAUTH2", "alice@a.test", "tok-bob", "empty",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "ERROR [AUTHENTICATIONFAILED] Authentication failed.",
			`Username 'alice@a.test' did not match 'bob@a.test'`},
		{"oauthbearer-other-users-token", "127.0.0.25", "OAUTHBEARER", "alice@a.test", "tok-bob", "cancel",
			`{"status":"invalid_token"}`, "ERROR AUTHENTICATE command error: BAD [b'AUTHENTICATE cancelled']",
			`Username 'alice@a.test' did not match 'bob@a.test'`},
	}
	for _, tc := range failCases {
		t.Run(tc.name, func(t *testing.T) {
			before := gatewaytest.Tally(t, e.reg, "imap")
			out := e.login(t, tc.src, tc.mech, tc.user, tc.token, tc.ack)
			want := []string{"CHALLENGE " + tc.challenge, tc.answer}
			if !slices.Equal(out, want) {
				t.Fatalf("client said\n%q, want\n%q", out, want)
			}
			e.d.WaitLog(t, `oauth2 failed: Introspection failed: `+regexp.QuoteMeta(tc.dovecot))
			before.Added(t, 1, 1, 0)
			gatewaytest.Penalised(t, e.store, tc.src, 1)
			e.logs.Wait(t, "client="+tc.src+":")
			if e.d.LoggedInFrom(tc.src) {
				t.Errorf("Dovecot logged a login from %s:\n%s", tc.src, e.d.Log())
			}
		})
	}
}

// TestOAuthDovecotServerDown: when the authorization server fails
// (Dovecot's oauth2 passdb gets a 503 from introspection), Dovecot answers
// a temporary failure, with no challenge: the client is told to try later,
// and it is no failed login (no penalty, not counted as failed).
func TestOAuthDovecotServerDown(t *testing.T) {
	e := startOAuthEnv(t)
	e.tokens.FailToken("tok-down")
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			src := map[string]string{"XOAUTH2": "127.0.0.31", "OAUTHBEARER": "127.0.0.32"}[mech]
			before := gatewaytest.Tally(t, e.reg, "imap")
			out := e.login(t, src, mech, "alice@a.test", "tok-down", "cancel")
			if want := []string{"ERROR [UNAVAILABLE] " + gateway.TextUnavailable}; !slices.Equal(out, want) {
				t.Fatalf("client said %q, want %q", out, want)
			}
			e.d.WaitLog(t, `oauth2 failed: Introspection failed: .*503`)
			before.Added(t, 0, 0, 1)
			gatewaytest.Penalised(t, e.store, src, 0)
		})
	}
}

func lengths(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}

// dialRawFrom is dialRaw from the loopback address src.
func dialRawFrom(t *testing.T, src, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{t: t, conn: c, r: newLineReader(c)}
}

// TestOAuthDovecotSASLIR: what Thunderbird-style clients send beside
// imaplib's exchange. The gateway offers both mechanisms and SASL-IR; a
// 4 KiB JWT in the initial response logs in; after a refused token the
// client may try a fresh one on the same connection; and with
// username_format lowercase a name in capitals is routed, logged and
// logged in at Dovecot as the one lower-cased name.
func TestOAuthDovecotSASLIR(t *testing.T) {
	e := startOAuthEnv(t)
	jwt := testenv.LongJWT("bob", 4<<10)
	e.tokens.AddToken(jwt, "bob@a.test")
	e.tokens.AddToken("tok-alice", "alice@a.test")
	ir := func(mech, user, token string) string {
		if mech == "XOAUTH2" {
			return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
		}
		return base64.StdEncoding.EncodeToString([]byte("n,a=" + user + ",\x01auth=Bearer " + token + "\x01\x01"))
	}

	t.Run("capabilities and long JWT", func(t *testing.T) {
		c := dialRawFrom(t, "127.0.0.41", e.p.addr)
		greeting := c.expectPrefix("* OK ")
		for _, cap := range []string{" SASL-IR", " AUTH=XOAUTH2", " AUTH=OAUTHBEARER"} {
			if !strings.Contains(greeting, cap+" ") && !strings.Contains(greeting, cap+"]") {
				t.Errorf("greeting %q does not offer%s", greeting, cap)
			}
		}
		c.send("a AUTHENTICATE OAUTHBEARER " + ir("OAUTHBEARER", "bob@a.test", jwt) + "\r\n")
		if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK ") {
			t.Fatalf("AUTHENTICATE with a %d-byte JWT: %q", len(jwt), l)
		}
		e.d.WaitLog(t, `Login: user=<bob@a\.test>, method=OAUTHBEARER, rip=127\.0\.0\.41,`)
		if got := e.tokens.Tokens(); len(got) != 1 || got[0] != jwt {
			t.Errorf("the introspection endpoint got %d tokens (lengths %v), want the %d-byte JWT", len(got), lengths(got), len(jwt))
		}
	})

	t.Run("retry after a refused token", func(t *testing.T) {
		c := dialRawFrom(t, "127.0.0.42", e.p.addr)
		c.expectPrefix("* OK ")
		c.send("a AUTHENTICATE XOAUTH2 " + ir("XOAUTH2", "alice@a.test", "stale") + "\r\n")
		c.expectPrefix("+ ")
		c.send("\r\n")
		if l := c.line(); !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("after the acknowledgement: %q", l)
		}
		c.send("b AUTHENTICATE XOAUTH2 " + ir("XOAUTH2", "alice@a.test", "tok-alice") + "\r\n")
		if l := c.expectPrefix("b "); !strings.HasPrefix(l, "b OK ") {
			t.Fatalf("a fresh token on the same connection: %q", l)
		}
		c.send("c SELECT INBOX\r\n")
		if l := c.expectPrefix("c "); !strings.HasPrefix(l, "c OK") {
			t.Errorf("SELECT: %q", l)
		}
		e.d.WaitLog(t, `Login: user=<alice@a\.test>, method=XOAUTH2, rip=127\.0\.0\.42,`)
	})

	t.Run("username_format lowercase", func(t *testing.T) {
		logs := gatewaytest.NewLogs(t)
		p := startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             oneBackend(t, "imap://"+e.d.Addr),
			AllowPlaintextAuth: true,
			OAuth:              true,
			Accounts:           gateway.AccountRules{Format: gateway.FormatLowercase},
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
		c := dialRawFrom(t, "127.0.0.43", p.addr)
		c.expectPrefix("* OK ")
		c.send("a AUTHENTICATE XOAUTH2 " + ir("XOAUTH2", "Alice@A.Test", "tok-alice") + "\r\n")
		if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK ") {
			t.Fatalf("AUTHENTICATE as Alice@A.Test: %q", l)
		}
		c.send("z LOGOUT\r\n")
		c.expectPrefix("z OK")
		c.conn.Close()
		e.d.WaitLog(t, `Login: user=<alice@a\.test>, method=XOAUTH2, rip=127\.0\.0\.43,`)
		logs.Wait(t, "client=127.0.0.43:")
		if !strings.Contains(logs.String(), "account=alice@a.test ") {
			t.Errorf("the gateway's session line does not name account alice@a.test:\n%s", logs.String())
		}
	})
}

// TestOAuthDovecotBackendTLS: OAuth logins reach a Dovecot that checks
// tokens over STARTTLS and over implicit TLS to the backend, its
// certificate verified, under the name the route gives (the client typed
// a short one): the message the backend gets names the routed account,
// which the token's owner is, and Dovecot logs that account's login from
// the client's address, over TLS.
func TestOAuthDovecotBackendTLS(t *testing.T) {
	e := startOAuthEnv(t)
	e.tokens.AddToken("tok-alice", "alice@a.test")
	pem, err := os.ReadFile(e.d.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", e.d.CertFile)
	}
	for _, tc := range []struct{ name, url, src, mech string }{
		{"starttls-xoauth2", "imap+starttls://" + e.d.Addr + "?server_name=localhost", "127.0.0.31", "XOAUTH2"},
		{"tls-oauthbearer", "imaps://" + e.d.TLSAddr + "?server_name=localhost", "127.0.0.32", "OAUTHBEARER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := route.ParseBackend(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, &imap.Server{Server: gateway.Server{
				Router: route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
					if req.Account != "alice" {
						return route.Route{}, route.ErrNotFound
					}
					return route.Route{Backends: []route.Backend{b}, Login: "alice@a.test"}, nil
				}),
				BackendTLS:         &tls.Config{RootCAs: roots},
				AllowPlaintextAuth: true,
				OAuth:              true,
			}})
			out := e.loginAt(t, p.addr, tc.src, tc.mech, "alice", "tok-alice", "cancel")
			if want := []string{"AUTH OK", "SELECT OK 1"}; !slices.Equal(out, want) {
				t.Fatalf("client said %q, want %q", out, want)
			}
			e.d.WaitLog(t, `imap-login: Info: Login: user=<alice@a\.test>, method=`+tc.mech+`, rip=`+regexp.QuoteMeta(tc.src)+`, .*\bTLS\b`)
		})
	}
}

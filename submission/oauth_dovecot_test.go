package submission_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/submission"
)

// oauthSMTPClient is python3's smtplib logging in with XOAUTH2 or
// OAUTHBEARER, the message as AUTH's initial response (as smtplib sends
// it whatever its length), from its own source address, then sending a
// message. An error challenge is answered with ACK: "empty" (XOAUTH2's
// acknowledgement) or "ctrl-a" (OAUTHBEARER's, RFC 7628 section 3.2.3).
const oauthSMTPClient = `
import os, smtplib
e = os.environ
host, port = e["ADDR"].rsplit(":", 1)
mech, user, token = e["MECH"], e["USER"], e["TOKEN"]
def message():
    if mech == "XOAUTH2":
        return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    esc = user.replace("=", "=3D").replace(",", "=2C")
    return "n,a=%s,\x01host=127.0.0.1\x01port=587\x01auth=Bearer %s\x01\x01" % (esc, token)
def answer(challenge=None):
    if challenge is None:
        return message()
    print("CHALLENGE " + challenge.decode(), flush=True)
    return {"empty": "", "ctrl-a": "\x01"}[e["ACK"]]
s = smtplib.SMTP(host, int(port), local_hostname="client.test", source_address=(e["SRC"], 0), timeout=20)
s.ehlo()
try:
    code, _ = s.auth(mech, answer)
    print("AUTH %d" % code, flush=True)
    s.sendmail(user, ["carol@c.test"], "From: %s\r\nTo: carol@c.test\r\nSubject: oauth %s\r\n\r\nhello\r\n" % (user, e["SRC"]))
    print("SENT", flush=True)
    s.quit()
except smtplib.SMTPAuthenticationError as err:
    print("ERROR %d %s" % (err.smtp_code, err.smtp_error.decode()), flush=True)
`

// TestOAuthDovecot: XOAUTH2 and OAUTHBEARER through the gateway to a real
// Dovecot submission service that checks tokens (oauth2 passdb,
// introspection): smtplib logs in as the account the gateway decided and
// sends a message relayed with that sender; the backend got the token as
// the client sent it (a 4 KiB JWT too, on an AUTH line of about 6 KiB: RFC 4954
// section 4 wants 12288 octets taken); its error challenge for a refused
// token reaches the client as 334, and the client's acknowledgement ends
// in 535, its "*" in 501, each counted as a failed login, with nothing
// logged in.
func TestOAuthDovecot(t *testing.T) {
	tokens := testenv.StartOAuth2Server(t, testenv.IntrospectPost)
	tokens.AddToken("tok-alice", "alice@a.test")
	tokens.AddToken("tok-bob", "bob@a.test")
	jwt := testenv.LongJWT("alice", 4<<10)
	tokens.AddToken(jwt, "alice@a.test")
	tokens.FailToken("tok-down")
	d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret-a", "bob@a.test": "secret-b"},
		TrustedNetworks: []string{"127.0.0.1/32"}, // the gateway passes the client's address in XCLIENT
		Protocols:       []string{testenv.Submission},
	}, testenv.OAuth2Options{Server: tokens, Passwords: true})
	reg := prometheus.NewRegistry()
	store := limit.NewMemoryStore(0)
	logs := gatewaytest.NewLogs(t)
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + d.SubmissionAddr}}),
		AllowPlaintextAuth: true,
		OAuth:              true,
		Metrics:            gateway.NewMetrics(reg, "submission"),
		Penalty:            &limit.Penalty{Store: store, Base: time.Nanosecond, Max: time.Nanosecond},
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	smtplib := func(t *testing.T, src, mech, user, token, ack string) []string {
		out := python(t, oauthSMTPClient, "ADDR="+p.addr, "SRC="+src, "MECH="+mech, "USER="+user, "TOKEN="+token, "ACK="+ack)
		return strings.Split(strings.TrimSpace(out), "\n")
	}

	t.Run("capabilities", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.10", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		ehlo := c.reply()
		m := regexp.MustCompile(`(?m)^250[- ]AUTH (.*)$`).FindStringSubmatch(ehlo)
		if m == nil || !slices.Contains(strings.Fields(m[1]), "XOAUTH2") || !slices.Contains(strings.Fields(m[1]), "OAUTHBEARER") {
			t.Errorf("EHLO does not offer XOAUTH2 and OAUTHBEARER:\n%s", ehlo)
		}
	})

	okCases := []struct{ name, src, mech, user, token string }{
		{"xoauth2", "127.0.0.11", "XOAUTH2", "alice@a.test", "tok-alice"},
		{"oauthbearer", "127.0.0.12", "OAUTHBEARER", "bob@a.test", "tok-bob"},
		{"xoauth2-long-jwt", "127.0.0.13", "XOAUTH2", "alice@a.test", jwt},
		{"oauthbearer-long-jwt", "127.0.0.14", "OAUTHBEARER", "alice@a.test", jwt},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tokens.Tokens())
			if out := smtplib(t, tc.src, tc.mech, tc.user, tc.token, "empty"); !slices.Equal(out, []string{"AUTH 235", "SENT"}) {
				t.Fatalf("smtplib said %q, want [AUTH 235 SENT]", out)
			}
			m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool {
				return bytes.Contains(m.Data, []byte("Subject: oauth "+tc.src+"\r\n"))
			})
			if m.From != tc.user {
				t.Errorf("relayed with sender %q, want %q", m.From, tc.user)
			}
			d.WaitLog(t, `submission-login: Info: Login: user=<`+regexp.QuoteMeta(tc.user)+`>, method=`+tc.mech+`, rip=`+regexp.QuoteMeta(tc.src)+`,`)
			if got := tokens.Tokens()[before:]; !slices.Equal(got, []string{tc.token}) {
				t.Errorf("the introspection endpoint got %d tokens, want the client's one (%d bytes) as sent", len(got), len(tc.token))
			}
			logs.WaitSession(t, tc.src, tc.user)
		})
	}

	failCases := []struct {
		name, src, mech, user, token, ack string
		challenge, answer, dovecot        string
	}{
		{"xoauth2-expired-ack", "127.0.0.21", "XOAUTH2", "alice@a.test", "expired", "",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "535 ", `Provided token is not valid`},
		{"xoauth2-expired-cancel", "127.0.0.22", "XOAUTH2", "alice@a.test", "expired2", "*",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "501 5.0.0 ", `Provided token is not valid`},
		{"oauthbearer-expired-ack", "127.0.0.23", "OAUTHBEARER", "alice@a.test", "expired3", "AQ==",
			`{"status":"invalid_token"}`, "535 ", `Provided token is not valid`},
		// Bob's token in Alice's name: Dovecot checks the token's user
		// against the name the gateway decided and sent, and refuses.
		{"xoauth2-other-users-token", "127.0.0.24", "XOAUTH2", "alice@a.test", "tok-bob", "",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "535 ", `Username 'alice@a.test' did not match 'bob@a.test'`},
		{"oauthbearer-other-users-token", "127.0.0.25", "OAUTHBEARER", "alice@a.test", "tok-bob", "*",
			`{"status":"invalid_token"}`, "501 5.0.0 ", `Username 'alice@a.test' did not match 'bob@a.test'`},
	}
	for _, tc := range failCases {
		t.Run(tc.name, func(t *testing.T) {
			before := gatewaytest.Tally(t, reg, "submission")
			c := dialRaw(t, tc.src, p.addr)
			c.reply()
			c.send("EHLO client.test\r\n")
			c.reply()
			c.send("AUTH " + tc.mech + " " + b64(testenv.OAuthMessage(tc.mech, tc.user, tc.token, 587)) + "\r\n")
			l := c.reply()
			ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "334 "))
			if !strings.HasPrefix(l, "334 ") || err != nil || string(ch) != tc.challenge {
				t.Fatalf("answer to a refused token: %q (%q), want 334 and Dovecot's challenge %s", l, ch, tc.challenge)
			}
			c.send(tc.ack + "\r\n")
			if l := c.reply(); !strings.HasPrefix(l, tc.answer) {
				t.Fatalf("after the client's %q: %q, want %q...", tc.ack, l, tc.answer)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: `+regexp.QuoteMeta(tc.dovecot))
			before.Added(t, 1, 1, 0)
			gatewaytest.Penalised(t, store, tc.src, 1)
			// Still the gateway's session: not logged in.
			c.send("MAIL FROM:<alice@a.test>\r\n")
			if l := c.reply(); !strings.HasPrefix(l, "530 ") {
				t.Errorf("MAIL after the failed login: %q, want 530", l)
			}
			if d.LoggedInFrom(tc.src) {
				t.Errorf("Dovecot logged a login from %s:\n%s", tc.src, d.Log())
			}
		})
	}

	// smtplib's own acknowledgement of the error challenge: an empty line.
	t.Run("smtplib-expired", func(t *testing.T) {
		out := smtplib(t, "127.0.0.31", "XOAUTH2", "alice@a.test", "expired4", "empty")
		if len(out) != 2 || out[0] != `CHALLENGE {"status":"401","schemes":"bearer","scope":"mail"}` || !strings.HasPrefix(out[1], "ERROR 535 ") {
			t.Fatalf("smtplib said %q, want the challenge, then a 535", out)
		}
	})

	// The authorization server is down (503 to Dovecot's introspection):
	// Dovecot's temporary failure, no challenge; the client is told to try
	// later (454), and it is no failed login.
	for i, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run("server-down-"+mech, func(t *testing.T) {
			src := fmt.Sprintf("127.0.0.%d", 41+i)
			before := gatewaytest.Tally(t, reg, "submission")
			c := dialRaw(t, src, p.addr)
			c.reply()
			c.send("EHLO client.test\r\n")
			c.reply()
			c.send("AUTH " + mech + " " + b64(testenv.OAuthMessage(mech, "alice@a.test", "tok-down", 587)) + "\r\n")
			if l := c.reply(); !strings.HasPrefix(l, "454 4.7.0 ") {
				t.Fatalf("AUTH %s with the authorization server down: %q, want 454 4.7.0", mech, l)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: .*503`)
			before.Added(t, 0, 0, 1)
			gatewaytest.Penalised(t, store, src, 0)
		})
	}
}

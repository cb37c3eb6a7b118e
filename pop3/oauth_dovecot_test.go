package pop3_test

import (
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
	"github.com/pipegate/pipegate/pop3"
)

// TestOAuthDovecot: XOAUTH2 and OAUTHBEARER through the gateway to a real
// Dovecot POP3 server that checks tokens (oauth2 passdb, introspection):
// the backend logs in the account the gateway decided and gets the token
// as the client sent it (a 4 KiB JWT too, after "+" as RFC 5034 section
// 4 wants, or on the AUTH line as clients do anyway); its
// error challenge for a refused token reaches the client as "+ ...", and
// the client's acknowledgement ends in -ERR [AUTH], its "*" in -ERR,
// each counted as a failed login, with nothing logged in.
func TestOAuthDovecot(t *testing.T) {
	tokens := testenv.StartOAuth2Server(t, testenv.IntrospectPost)
	tokens.AddToken("tok-alice", "alice@a.test")
	tokens.AddToken("tok-bob", "bob@a.test")
	jwt := testenv.LongJWT("alice", 4<<10)
	tokens.AddToken(jwt, "alice@a.test")
	tokens.FailToken("tok-down")
	d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret-a", "bob@a.test": "secret-b"},
		Messages:        map[string][]string{"alice@a.test": {"Subject: one\r\n\r\nhello\r\n"}, "bob@a.test": {"Subject: 1\r\n\r\n1\r\n", "Subject: 2\r\n\r\n2\r\n"}},
		TrustedNetworks: []string{"127.0.0.1/32"}, // the gateway passes the client's address in XCLIENT
		Protocols:       []string{testenv.POP3},
	}, testenv.OAuth2Options{Server: tokens, Passwords: true})
	reg := prometheus.NewRegistry()
	store := limit.NewMemoryStore(0)
	logs := gatewaytest.NewLogs(t)
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + d.POP3Addr}}),
		AllowPlaintextAuth: true,
		OAuth:              true,
		Metrics:            gateway.NewMetrics(reg, "pop3"),
		Penalty:            &limit.Penalty{Store: store, Base: time.Nanosecond, Max: time.Nanosecond},
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	auth := func(c *client, mech, msg string, separate bool) string {
		ir := base64.StdEncoding.EncodeToString([]byte(msg))
		if !separate {
			return c.cmd("AUTH " + mech + " " + ir)
		}
		if l := c.cmd("AUTH " + mech); l != "+ " {
			t.Fatalf("AUTH %s without initial response: %q, want \"+ \"", mech, l)
		}
		return c.cmd(ir)
	}

	t.Run("capabilities", func(t *testing.T) {
		c := dial(t, "127.0.0.10", p.addr)
		capa := c.multi("CAPA")
		i := slices.IndexFunc(capa, func(l string) bool { return strings.HasPrefix(l, "SASL ") })
		if i < 0 || !slices.Contains(strings.Fields(capa[i]), "XOAUTH2") || !slices.Contains(strings.Fields(capa[i]), "OAUTHBEARER") {
			t.Errorf("CAPA does not offer XOAUTH2 and OAUTHBEARER: %q", capa)
		}
	})

	okCases := []struct {
		name, src, mech, user, token, stat string
		separate                           bool
	}{
		{"xoauth2", "127.0.0.11", "XOAUTH2", "alice@a.test", "tok-alice", "+OK 1 ", false},
		{"oauthbearer", "127.0.0.12", "OAUTHBEARER", "bob@a.test", "tok-bob", "+OK 2 ", false},
		{"xoauth2-long-jwt", "127.0.0.13", "XOAUTH2", "alice@a.test", jwt, "+OK 1 ", true},
		// Past RFC 5034's 255 octets on the AUTH line, as clients send
		// it anyway: the gateway takes it, and sends it to Dovecot after "+".
		{"oauthbearer-long-jwt-inline", "127.0.0.14", "OAUTHBEARER", "alice@a.test", jwt, "+OK 1 ", false},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tokens.Tokens())
			c := dial(t, tc.src, p.addr)
			if l := auth(c, tc.mech, testenv.OAuthMessage(tc.mech, tc.user, tc.token, 110), tc.separate); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("AUTH %s: %q", tc.mech, l)
			}
			if l := c.cmd("STAT"); !strings.HasPrefix(l, tc.stat) {
				t.Errorf("STAT: %q, want %q...", l, tc.stat)
			}
			c.cmd("QUIT")
			c.conn.Close() // the session's line is logged once both sides ended
			d.WaitLog(t, `pop3-login: Info: Login: user=<`+regexp.QuoteMeta(tc.user)+`>, method=`+tc.mech+`, rip=`+regexp.QuoteMeta(tc.src)+`,`)
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
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "-ERR [AUTH] ", `Provided token is not valid`},
		{"xoauth2-expired-cancel", "127.0.0.22", "XOAUTH2", "alice@a.test", "expired2", "*",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "-ERR ", `Provided token is not valid`},
		{"oauthbearer-expired-ack", "127.0.0.23", "OAUTHBEARER", "alice@a.test", "expired3", "AQ==",
			`{"status":"invalid_token"}`, "-ERR [AUTH] ", `Provided token is not valid`},
		// Bob's token in Alice's name: Dovecot checks the token's user
		// against the name the gateway decided and sent, and refuses.
		{"xoauth2-other-users-token", "127.0.0.24", "XOAUTH2", "alice@a.test", "tok-bob", "",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, "-ERR [AUTH] ", `Username 'alice@a.test' did not match 'bob@a.test'`},
		{"oauthbearer-other-users-token", "127.0.0.25", "OAUTHBEARER", "alice@a.test", "tok-bob", "*",
			`{"status":"invalid_token"}`, "-ERR ", `Username 'alice@a.test' did not match 'bob@a.test'`},
	}
	for _, tc := range failCases {
		t.Run(tc.name, func(t *testing.T) {
			before := gatewaytest.Tally(t, reg, "pop3")
			c := dial(t, tc.src, p.addr)
			l := auth(c, tc.mech, testenv.OAuthMessage(tc.mech, tc.user, tc.token, 110), false)
			ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
			if !strings.HasPrefix(l, "+ ") || err != nil || string(ch) != tc.challenge {
				t.Fatalf("answer to a refused token: %q (%q), want \"+ \" and Dovecot's challenge %s", l, ch, tc.challenge)
			}
			if l := c.cmd(tc.ack); !strings.HasPrefix(l, tc.answer) {
				t.Fatalf("after the client's %q: %q, want %q...", tc.ack, l, tc.answer)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: `+regexp.QuoteMeta(tc.dovecot))
			before.Added(t, 1, 1, 0)
			gatewaytest.Penalised(t, store, tc.src, 1)
			// The session goes on: a later command is the gateway's.
			if l := c.cmd("STAT"); !strings.HasPrefix(l, "-ERR") {
				t.Errorf("STAT after the failed login: %q, want -ERR", l)
			}
			if d.LoggedInFrom(tc.src) {
				t.Errorf("Dovecot logged a login from %s:\n%s", tc.src, d.Log())
			}
		})
	}

	// The authorization server is down (503 to Dovecot's introspection):
	// Dovecot's temporary failure, no challenge; the client is told to try
	// later, and it is no failed login.
	for i, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run("server-down-"+mech, func(t *testing.T) {
			src := fmt.Sprintf("127.0.0.%d", 31+i)
			before := gatewaytest.Tally(t, reg, "pop3")
			c := dial(t, src, p.addr)
			if l := auth(c, mech, testenv.OAuthMessage(mech, "alice@a.test", "tok-down", 110), false); !strings.HasPrefix(l, "-ERR [SYS/TEMP] ") {
				t.Fatalf("AUTH %s with the authorization server down: %q, want -ERR [SYS/TEMP]", mech, l)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: .*503`)
			before.Added(t, 0, 0, 1)
			gatewaytest.Penalised(t, store, src, 0)
		})
	}
}

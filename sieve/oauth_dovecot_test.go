package sieve_test

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
	"github.com/pipegate/pipegate/sieve"
)

// TestOAuthDovecot: XOAUTH2 and OAUTHBEARER through the gateway to a real
// Dovecot ManageSieve server that checks tokens (oauth2 passdb,
// introspection): the backend logs in the account the gateway decided and
// gets the token as the client sent it (a 4 KiB JWT too, in a literal or
// in a quoted string);
// its error challenge for a refused token reaches the client as a string,
// and the client's acknowledgement ends in NO, its "*" in NO, each counted
// as a failed login, with nothing logged in.
func TestOAuthDovecot(t *testing.T) {
	tokens := testenv.StartOAuth2Server(t, testenv.IntrospectGet)
	tokens.AddToken("tok-alice", "alice@a.test")
	tokens.AddToken("tok-bob", "bob@a.test")
	jwt := testenv.LongJWT("alice", 4<<10)
	tokens.AddToken(jwt, "alice@a.test")
	tokens.FailToken("tok-down")
	d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret-a", "bob@a.test": "secret-b"},
		TrustedNetworks: []string{"127.0.0.1/32"}, // the gateway passes the client's address in XCLIENT
		Protocols:       []string{testenv.Sieve},
	}, testenv.OAuth2Options{Server: tokens, Passwords: true})
	reg := prometheus.NewRegistry()
	store := limit.NewMemoryStore(0)
	logs := gatewaytest.NewLogs(t)
	addr := startProxy(t, &sieve.Server{Server: gateway.Server{
		Router:             newRouter(t, "sieve://"+d.SieveAddr),
		AllowPlaintextAuth: true,
		OAuth:              true,
		Metrics:            gateway.NewMetrics(reg, "sieve"),
		Penalty:            &limit.Penalty{Store: store, Base: time.Nanosecond, Max: time.Nanosecond},
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	// authenticate sends AUTHENTICATE with the message as a quoted
	// initial response, a literal {n+}, or (continuation) as a quoted
	// answer to the gateway's empty challenge.
	authenticate := func(c *client, mech, msg, form string) {
		ir := b64(msg)
		switch form {
		case "literal":
			c.send(fmt.Sprintf("AUTHENTICATE \"%s\" {%d+}\r\n%s\r\n", mech, len(ir), ir))
		case "continuation":
			c.send(`AUTHENTICATE "` + mech + "\"\r\n")
			if l := c.line(); l != "\"\"\r\n" {
				c.t.Fatalf("AUTHENTICATE %s without initial response: %q, want an empty challenge", mech, l)
			}
			c.send(`"` + ir + "\"\r\n")
		default:
			c.send(`AUTHENTICATE "` + mech + `" "` + ir + "\"\r\n")
		}
	}

	t.Run("capabilities", func(t *testing.T) {
		_, greeting := dial(t, "127.0.0.10", addr)
		m := regexp.MustCompile(`"SASL" "([^"]*)"`).FindStringSubmatch(greeting)
		if m == nil || !slices.Contains(strings.Fields(m[1]), "XOAUTH2") || !slices.Contains(strings.Fields(m[1]), "OAUTHBEARER") {
			t.Errorf("the greeting does not offer XOAUTH2 and OAUTHBEARER:\n%s", greeting)
		}
	})

	okCases := []struct{ name, src, mech, user, token, form string }{
		{"xoauth2", "127.0.0.11", "XOAUTH2", "alice@a.test", "tok-alice", "quoted"},
		{"oauthbearer", "127.0.0.12", "OAUTHBEARER", "bob@a.test", "tok-bob", "quoted"},
		{"xoauth2-long-jwt-literal", "127.0.0.13", "XOAUTH2", "alice@a.test", jwt, "literal"},
		// In a quoted string, as clients send it (RFC 5804 section 4 keeps
		// quoted strings to 1024 octets, but Dovecot takes SASL data of
		// any length so).
		{"oauthbearer-long-jwt-quoted", "127.0.0.14", "OAUTHBEARER", "alice@a.test", jwt, "quoted"},
		{"xoauth2-long-jwt-continuation", "127.0.0.15", "XOAUTH2", "alice@a.test", jwt, "continuation"},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tokens.Tokens())
			c, _ := dial(t, tc.src, addr)
			authenticate(c, tc.mech, testenv.OAuthMessage(tc.mech, tc.user, tc.token, 4190), tc.form)
			c.response("OK")
			c.send("LISTSCRIPTS\r\n")
			c.response("OK")
			c.send("LOGOUT\r\n")
			c.response("OK")
			c.c.Close() // the session's line is logged once both sides ended
			d.WaitLog(t, `managesieve-login: Info: Login: user=<`+regexp.QuoteMeta(tc.user)+`>, method=`+tc.mech+`, rip=`+regexp.QuoteMeta(tc.src)+`,`)
			if got := tokens.Tokens()[before:]; !slices.Equal(got, []string{tc.token}) {
				t.Errorf("the introspection endpoint got %d tokens, want the client's one (%d bytes) as sent", len(got), len(tc.token))
			}
			logs.WaitSession(t, tc.src, tc.user)
		})
	}

	failCases := []struct {
		name, src, mech, user, token, ack string
		challenge, dovecot                string
	}{
		{"xoauth2-expired-ack", "127.0.0.21", "XOAUTH2", "alice@a.test", "expired", "",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, `Provided token is not valid`},
		{"xoauth2-expired-cancel", "127.0.0.22", "XOAUTH2", "alice@a.test", "expired2", "*",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, `Provided token is not valid`},
		{"oauthbearer-expired-ack", "127.0.0.23", "OAUTHBEARER", "alice@a.test", "expired3", "AQ==",
			`{"status":"invalid_token"}`, `Provided token is not valid`},
		// Bob's token in Alice's name: Dovecot checks the token's user
		// against the name the gateway decided and sent, and refuses.
		{"xoauth2-other-users-token", "127.0.0.24", "XOAUTH2", "alice@a.test", "tok-bob", "",
			`{"status":"401","schemes":"bearer","scope":"mail"}`, `Username 'alice@a.test' did not match 'bob@a.test'`},
		{"oauthbearer-other-users-token", "127.0.0.25", "OAUTHBEARER", "alice@a.test", "tok-bob", "*",
			`{"status":"invalid_token"}`, `Username 'alice@a.test' did not match 'bob@a.test'`},
	}
	for _, tc := range failCases {
		t.Run(tc.name, func(t *testing.T) {
			before := gatewaytest.Tally(t, reg, "sieve")
			c, _ := dial(t, tc.src, addr)
			authenticate(c, tc.mech, testenv.OAuthMessage(tc.mech, tc.user, tc.token, 4190), "quoted")
			l := strings.TrimSuffix(c.line(), "\r\n")
			ch, err := base64.StdEncoding.DecodeString(strings.Trim(l, `"`))
			if !strings.HasPrefix(l, `"`) || err != nil || string(ch) != tc.challenge {
				t.Fatalf("answer to a refused token: %q (%q), want a string with Dovecot's challenge %s", l, ch, tc.challenge)
			}
			c.send(`"` + tc.ack + "\"\r\n")
			if got := c.response("NO"); !strings.HasPrefix(got, "NO") {
				t.Fatalf("after the client's %q: %q, want NO", tc.ack, got)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: `+regexp.QuoteMeta(tc.dovecot))
			before.Added(t, 1, 1, 0)
			gatewaytest.Penalised(t, store, tc.src, 1)
			// Still the gateway's session: not logged in.
			c.send("LISTSCRIPTS\r\n")
			if got, final := c.status(); final != "NO" {
				t.Errorf("LISTSCRIPTS after the failed login: %q, want NO", got)
			}
			if d.LoggedInFrom(tc.src) {
				t.Errorf("Dovecot logged a login from %s:\n%s", tc.src, d.Log())
			}
		})
	}

	// The authorization server is down (503 to Dovecot's introspection):
	// Dovecot's temporary failure, no challenge; the client is told to try
	// later (TRYLATER), and it is no failed login.
	for i, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run("server-down-"+mech, func(t *testing.T) {
			src := fmt.Sprintf("127.0.0.%d", 31+i)
			before := gatewaytest.Tally(t, reg, "sieve")
			c, _ := dial(t, src, addr)
			authenticate(c, mech, testenv.OAuthMessage(mech, "alice@a.test", "tok-down", 4190), "quoted")
			if got := c.response("NO"); !strings.HasPrefix(got, "NO (TRYLATER) ") {
				t.Fatalf("AUTHENTICATE %s with the authorization server down: %q, want NO (TRYLATER)", mech, got)
			}
			d.WaitLog(t, `oauth2 failed: Introspection failed: .*503`)
			before.Added(t, 0, 0, 1)
			gatewaytest.Penalised(t, store, src, 0)
		})
	}
}

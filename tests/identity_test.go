package tests

// Issue 17: the account that is routed must be the account the backend
// logs in. These tests attack the identity a client gives pipegate (NUL
// split, CR/LF, authzid, odd characters), check the rules about names
// (username_chars, username_format), the uniform failure path, the
// pre-login limit per address, and what an auth_http service is sent and
// may answer (escaping, Auth-SSL, Auth-Pass, Auth-Error-Code).

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// quick turns the failure floor off, for tests that do not look at it.
const quick = "auth_failure_delay: 0s\n"

// idAttempt is one hostile login; try sends it on a fresh connection and
// returns the tagged answer (tag "a").
type idAttempt struct {
	name string
	try  func(t *testing.T, rc *rawClient) string
}

func literalAttempt(head, lit, tail string, nonSync bool) func(*testing.T, *rawClient) string {
	return func(t *testing.T, rc *rawClient) string {
		return literalCommand(t, rc, "a", head, lit, tail, nonSync)
	}
}

func saslAttempt(mech string, ir []byte, resps ...[]byte) func(*testing.T, *rawClient) string {
	return func(t *testing.T, rc *rawClient) string {
		return authenticate(t, rc, "a", mech, ir, resps...)
	}
}

func plainMsg(authz, authc, pass string) []byte {
	return []byte(authz + "\x00" + authc + "\x00" + pass)
}

func xoauth2Msg(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

func oauthBearerMsg(user, token string) []byte {
	return []byte("n,a=" + user + ",\x01host=127.0.0.1\x01auth=Bearer " + token + "\x01\x01")
}

// splitAttempts are the ways to smuggle victim's name, followed by NUL,
// CR or LF and tail, through every login command and SASL mechanism
// pipegate takes; the password is victim's own.
func splitAttempts(victim, tail string) []idAttempt {
	pass := password(victim)
	nul := victim + "\x00" + tail
	return []idAttempt{
		{"LOGIN quoted name with NUL", func(t *testing.T, rc *rawClient) string {
			rc.send("a LOGIN \"%s\" %s\r\n", nul, pass)
			return tagged(t, rc, "a")
		}},
		{"LOGIN literal name with NUL", literalAttempt("LOGIN ", nul, " "+pass, false)},
		{"LOGIN non-sync literal name with NUL", literalAttempt("LOGIN ", nul, " "+pass, true)},
		{"LOGIN literal name with CR LF", literalAttempt("LOGIN ", victim+"\r\n"+tail, " "+pass, false)},
		{"LOGIN non-sync literal name with LF", literalAttempt("LOGIN ", victim+"\n"+tail, " "+pass, true)},
		{"LOGIN literal password with NUL", literalAttempt("LOGIN "+victim+" ", pass+"\x00"+tail, "", false)},
		{"LOGIN non-sync literal password with CR", literalAttempt("LOGIN "+victim+" ", pass+"\r"+tail, "", true)},
		{"PLAIN initial response, NUL in authcid", saslAttempt("PLAIN", plainMsg("", nul, pass))},
		{"PLAIN continuation, NUL in authcid", saslAttempt("PLAIN", nil, plainMsg("", nul, pass))},
		{"PLAIN, CR LF in authcid", saslAttempt("PLAIN", plainMsg("", victim+"\r\n"+tail, pass))},
		{"PLAIN, LF in authzid", saslAttempt("PLAIN", plainMsg(victim+"\n"+tail, victim, pass))},
		{"PLAIN, NUL in password", saslAttempt("PLAIN", plainMsg("", victim, pass+"\x00"+tail))},
		{"PLAIN continuation, LF in password", saslAttempt("PLAIN", nil, plainMsg("", victim, pass+"\n"+tail))},
		{"LOGIN mechanism continuation, NUL in name", saslAttempt("LOGIN", nil, []byte(nul), []byte(pass))},
		{"LOGIN mechanism initial response, NUL in name", saslAttempt("LOGIN", []byte(nul), []byte(pass))},
		{"LOGIN mechanism, CR in name", saslAttempt("LOGIN", nil, []byte(victim+"\r"+tail), []byte(pass))},
		{"LOGIN mechanism, NUL in password", saslAttempt("LOGIN", []byte(victim), []byte(pass+"\x00"+tail))},
		{"XOAUTH2 initial response, NUL in user", saslAttempt("XOAUTH2", xoauth2Msg(nul, "otp-token"))},
		{"XOAUTH2 continuation, NUL in user", saslAttempt("XOAUTH2", nil, xoauth2Msg(nul, "otp-token"))},
		{"XOAUTH2, LF in token", saslAttempt("XOAUTH2", xoauth2Msg(victim, "otp-token\n"+tail))},
		{"OAUTHBEARER initial response, NUL in authzid", saslAttempt("OAUTHBEARER", oauthBearerMsg(nul, "otp-token"))},
	}
}

// runSplitAttempts runs each attempt from its own address (prefix.N, N from
// 10) against e's plain listener: each must be refused (tagged NO
// [AUTHENTICATIONFAILED] or BAD), a NO must leave the connection usable,
// and untouched(t, src) must hold afterwards.
func runSplitAttempts(t *testing.T, e *env, attempts []idAttempt, prefix string, untouched func(t *testing.T, src string)) {
	for i, a := range attempts {
		src := fmt.Sprintf("%s.%d", prefix, 10+i)
		t.Run(a.name, func(t *testing.T) {
			rc := rawDial(t, src, e.plainAddr)
			l := a.try(t, rc)
			t.Logf("answer: %q", l)
			if !isRefusal(l, "a") {
				t.Errorf("answer %q, want a NO [AUTHENTICATIONFAILED] or a BAD", l)
			}
			if strings.HasPrefix(l, "a NO") {
				rc.send("z NOOP\r\n")
				if l := tagged(t, rc, "z"); !strings.HasPrefix(l, "z OK") {
					t.Errorf("NOOP after the refusal: %q", l)
				}
			}
			rc.c.Close()
			untouched(t, src)
		})
	}
}

// TestIdentityFileRoutes: with a routes file, a name split by NUL (or
// holding CR/LF) never reaches Dovecot, whatever command carries it; a
// password with quotes, backslashes and "{5}" does, intact; an authzid of
// another account is refused; username_format: lowercase routes, logs and
// logs in the lower-case name.
func TestIdentityFileRoutes(t *testing.T) {
	b := newIDBackends(t)
	e := b.pipegate(t, b.fileRouting(), quick+"oauth: true\n")

	t.Run("split", func(t *testing.T) {
		// alice's name, NUL, carol's: routed on the whole string, Dovecot
		// would cut at the NUL and log alice in with her password.
		runSplitAttempts(t, e, splitAttempts("alice@a.test", "carol@a.test"), "127.0.17", func(t *testing.T, src string) {
			backendUntouched(t, e, b.d1, src, "alice@a.test")
		})
		noFalseAccountLogged(t, e)
	})

	t.Run("quirky password", func(t *testing.T) {
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(quirkPass) + `"`
		logins := []idAttempt{
			{"LOGIN quoted", func(t *testing.T, rc *rawClient) string {
				rc.send("a LOGIN %s %s\r\n", quirkUser, quoted)
				return tagged(t, rc, "a")
			}},
			{"LOGIN literal", literalAttempt("LOGIN "+quirkUser+" ", quirkPass, "", false)},
			{"LOGIN non-sync literal", literalAttempt("LOGIN "+quirkUser+" ", quirkPass, "", true)},
			{"PLAIN", saslAttempt("PLAIN", plainMsg("", quirkUser, quirkPass))},
			{"LOGIN mechanism", saslAttempt("LOGIN", nil, []byte(quirkUser), []byte(quirkPass))},
		}
		const src = "127.0.17.100"
		for _, a := range logins {
			t.Run(a.name, func(t *testing.T) {
				rc := rawDial(t, src, e.plainAddr)
				if l := a.try(t, rc); !strings.HasPrefix(l, "a OK") {
					t.Fatalf("login with the password %q: %q", quirkPass, l)
				}
				rc.send("b LOGOUT\r\n")
				rc.expect("b OK")
			})
		}
		re := regexp.MustCompile(`Login: user=<quirk@a\.test>, method=PLAIN, rip=127\.0\.17\.100,`)
		waitUntil(t, "Dovecot logs every quirk login", func() bool {
			return len(re.FindAllString(b.d1.Log(), -1)) >= len(logins)
		})
		if n := len(re.FindAllString(b.d1.Log(), -1)); n != len(logins) {
			t.Errorf("Dovecot logged %d logins of %s, want %d", n, quirkUser, len(logins))
		}
	})

	t.Run("authzid", func(t *testing.T) {
		const src = "127.0.17.101"
		rc := rawDial(t, src, e.plainAddr)
		// carol as authorization identity, alice's own credentials: a
		// master-user login, refused without master users.
		if l := authenticate(t, rc, "a", "PLAIN", plainMsg("carol@a.test", "alice@a.test", "alice-secret")); !isRefusal(l, "a") {
			t.Errorf("authzid carol, authcid alice: %q, want a NO [AUTHENTICATIONFAILED]", l)
		}
		rc.c.Close()
		backendUntouched(t, e, b.d1, src, "alice@a.test")

		rc = rawDial(t, "127.0.17.102", e.plainAddr)
		if l := authenticate(t, rc, "a", "PLAIN", plainMsg("alice@a.test", "alice@a.test", "alice-secret")); !strings.HasPrefix(l, "a OK") {
			t.Errorf("authzid equal to authcid: %q, want a OK", l)
		}
	})

	// lowercase is the default: the account routed, logged and logged in
	// is the one Dovecot (%Lu) would log in anyway.
	for _, tc := range []struct{ name, extra, src string }{
		{"username_format lowercase", "username_format: lowercase\n", "127.0.17.103"},
		{"username_format by default", "", "127.0.17.104"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lower := b.pipegate(t, b.fileRouting(), quick+tc.extra)
			src := tc.src
			rc := rawDial(t, src, lower.plainAddr)
			rc.send("a LOGIN ALICE@A.TEST alice-secret\r\n")
			if l := tagged(t, rc, "a"); !strings.HasPrefix(l, "a OK") {
				t.Fatalf("LOGIN ALICE@A.TEST: %q", l)
			}
			rc.send("b SELECT INBOX\r\n")
			rc.expect(fmt.Sprintf("* %d EXISTS", messageCount["alice@a.test"]))
			rc.send("c LOGOUT\r\n")
			rc.expect("c OK")
			rc.untilClosed()
			rc.c.Close() // the session line is written when both sides are closed
			b.d1.WaitLog(t, `Login: user=<alice@a\.test>, method=PLAIN, rip=`+regexp.QuoteMeta(src)+`,`)
			l := waitLogT(t, lower, `msg="imap session".*client=`+regexp.QuoteMeta(src)+`:`)
			if !regexp.MustCompile(`account="?alice@a\.test"?( |$)`).MatchString(l) {
				t.Errorf("session line does not name the lower-case account: %s", l)
			}
		})
	}
}

// authHTTPAnswer is the service of TestIdentityAuthHTTP: alice is blocked,
// temp@a.test meets a temporary failure, carol with the one-time password
// otp-123 is sent to d1 with her real password, every other name to d1 but
// those the tests use only to see how they arrive (refused at once, to
// spare Dovecot's failure delay).
func authHTTPAnswer(b *idBackends) func(idAuthRequest) map[string]string {
	return func(r idAuthRequest) map[string]string {
		switch {
		case r.User == "alice@a.test":
			return map[string]string{"Auth-Status": "Account blocked"}
		case r.User == "dave@a.test" || strings.ContainsAny(r.User, "%ö "):
			return map[string]string{"Auth-Status": "Invalid login or password"}
		case r.User == "temp@a.test":
			return map[string]string{"Auth-Status": "Temporary failure", "Auth-Error-Code": "UNAVAILABLE"}
		case r.User == "carol@a.test" && r.Pass == "otp-123":
			h := routeTo(b.d1)
			h["Auth-Pass"] = "carol-secret"
			return h
		}
		return routeTo(b.d1)
	}
}

// TestIdentityAuthHTTP: with an auth_http source that blocks alice, no
// split name reaches the service (so none can slip past its policy) or
// Dovecot; names outside username_chars are refused before the service is
// asked; the service gets names and passwords escaped as nginx does,
// Auth-SSL on TLS, and its Auth-Pass and Auth-Error-Code are used.
func TestIdentityAuthHTTP(t *testing.T) {
	b := newIDBackends(t)
	svc := startAuthService(t, authHTTPAnswer(b))
	e := b.pipegate(t, httpRouting(svc), quick+"oauth: true\n")

	t.Run("split", func(t *testing.T) {
		const victim = "alice@a.test"
		runSplitAttempts(t, e, splitAttempts(victim, "x@a.test"), "127.0.18", func(t *testing.T, src string) {
			if reqs := svc.from(src); len(reqs) > 0 {
				t.Errorf("the auth service was asked before the refusal: %+v", reqs)
			}
			backendUntouched(t, e, b.d1, src, "carol@a.test")
		})
		for _, r := range svc.all() {
			if strings.HasPrefix(r.User, victim) && r.User != victim {
				t.Errorf("the auth service was asked about %q (Auth-User: %s): a name that Dovecot cuts to %s", r.User, r.RawUser, victim)
			}
			if strings.ContainsAny(r.User+r.Pass, "\x00\r\n") {
				t.Errorf("the auth service was sent NUL, CR or LF: Auth-User: %s, Auth-Pass: %s", r.RawUser, r.RawPass)
			}
		}
		if strings.Contains(b.d1.Log(), "Login: user=<alice@a.test>") {
			t.Errorf("Dovecot logged the blocked alice in:\n%s", b.d1.Log())
		}
		noFalseAccountLogged(t, e)
	})

	t.Run("username_chars default", func(t *testing.T) {
		for i, a := range []idAttempt{
			{"space", func(t *testing.T, rc *rawClient) string {
				rc.send("a LOGIN \"car ol@a.test\" carol-secret\r\n")
				return tagged(t, rc, "a")
			}},
			{"exclamation mark", func(t *testing.T, rc *rawClient) string {
				rc.send("a LOGIN car!ol@a.test carol-secret\r\n")
				return tagged(t, rc, "a")
			}},
			{"UTF-8", literalAttempt("LOGIN ", "jörg@a.test", " secret", false)},
			{"PLAIN with a percent sign", saslAttempt("PLAIN", plainMsg("", "car%ol@a.test", "carol-secret"))},
		} {
			src := fmt.Sprintf("127.0.18.%d", 100+i)
			t.Run(a.name, func(t *testing.T) {
				rc := rawDial(t, src, e.plainAddr)
				if l := a.try(t, rc); !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") {
					t.Errorf("answer %q, want a NO [AUTHENTICATIONFAILED]", l)
				}
				if reqs := svc.from(src); len(reqs) > 0 {
					t.Errorf("the auth service was asked: %+v", reqs)
				}
			})
		}
	})

	t.Run("username_chars any printable", func(t *testing.T) {
		anyChars := b.pipegate(t, httpRouting(svc), quick+"username_chars: \"\"\n")
		for i, tc := range []struct {
			name, user, wantRaw string // wantRaw "": refused before the service
		}{
			{"UTF-8", "jörg@a.test", "j%C3%B6rg@a.test"},
			{"percent sign", "100%x@a.test", "100%25x@a.test"},
			{"DEL", "a\x7fb@a.test", ""},
			{"control byte", "a\x01b@a.test", ""},
			{"invalid UTF-8", "a\xffb@a.test", ""},
		} {
			src := fmt.Sprintf("127.0.18.%d", 110+i)
			t.Run(tc.name, func(t *testing.T) {
				rc := rawDial(t, src, anyChars.plainAddr)
				l := literalCommand(t, rc, "a", "LOGIN ", tc.user, " some-password", false)
				reqs := svc.from(src)
				if tc.wantRaw == "" {
					if !strings.HasPrefix(l, "a NO [AUTHENTICATIONFAILED]") && !strings.HasPrefix(l, "a BAD") {
						t.Errorf("answer %q, want a NO [AUTHENTICATIONFAILED]", l)
					}
					if len(reqs) > 0 {
						t.Errorf("the auth service was asked about a name that is not printable UTF-8: %+v", reqs)
					}
					return
				}
				if len(reqs) != 1 {
					t.Fatalf("the auth service got %d requests for %q, want 1 (answer %q)", len(reqs), tc.user, l)
				}
				if reqs[0].RawUser != tc.wantRaw {
					t.Errorf("Auth-User: %s, want %s", reqs[0].RawUser, tc.wantRaw)
				}
			})
		}
		// A space is printable; if it is let through, it is escaped.
		const src = "127.0.18.119"
		rc := rawDial(t, src, anyChars.plainAddr)
		rc.send("a LOGIN \"car ol@a.test\" some-password\r\n")
		l := tagged(t, rc, "a")
		if reqs := svc.from(src); len(reqs) == 0 {
			t.Logf("a name with a space is refused before the service: %q", l)
		} else if reqs[0].RawUser != "car%20ol@a.test" {
			t.Errorf("Auth-User: %s, want car%%20ol@a.test", reqs[0].RawUser)
		}
	})

	t.Run("username_format", func(t *testing.T) {
		lower := b.pipegate(t, httpRouting(svc), quick+"username_format: lowercase\n")
		asIs := b.pipegate(t, httpRouting(svc), quick+"username_format: as_is\n")
		for _, tc := range []struct {
			name, src string
			e         *env
			want      string
		}{
			{"as_is", "127.0.18.126", asIs, "CAROL@A.TEST"},
			{"lowercase", "127.0.18.127", lower, "carol@a.test"},
			{"by default", "127.0.18.128", e, "carol@a.test"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rc := rawDial(t, tc.src, tc.e.plainAddr)
				rc.send("a LOGIN CAROL@A.TEST carol-secret\r\n")
				if l := tagged(t, rc, "a"); !strings.HasPrefix(l, "a OK") {
					t.Fatalf("LOGIN CAROL@A.TEST: %q", l)
				}
				reqs := svc.from(tc.src)
				if len(reqs) != 1 || reqs[0].RawUser != tc.want {
					t.Errorf("the service was asked %+v, want one request with Auth-User: %s", reqs, tc.want)
				}
			})
		}
	})

	t.Run("Auth-Pass escaping", func(t *testing.T) {
		const src = "127.0.18.120"
		rc := rawDial(t, src, e.plainAddr)
		pass := "wrong pass\tä%\x7f~"
		literalCommand(t, rc, "a", "LOGIN dave@a.test ", pass, "", false)
		reqs := svc.from(src)
		if len(reqs) != 1 {
			t.Fatalf("the auth service got %d requests, want 1", len(reqs))
		}
		if want := "wrong%20pass%09%C3%A4%25%7F~"; reqs[0].RawPass != want {
			t.Errorf("Auth-Pass: %s, want %s", reqs[0].RawPass, want)
		}
	})

	t.Run("Auth-SSL", func(t *testing.T) {
		for _, tc := range []struct {
			mode, src, want string
		}{{"plain", "127.0.18.121", ""}, {"tls", "127.0.18.122", "on"}, {"starttls", "127.0.18.123", "on"}} {
			t.Run(tc.mode, func(t *testing.T) {
				var rc *rawClient
				switch tc.mode {
				case "tls":
					rc = e.rawTLS(t, tc.src)
				default:
					rc = rawDial(t, tc.src, e.plainAddr)
				}
				if tc.mode == "starttls" {
					rc.send("s STARTTLS\r\n")
					rc.expect("s OK")
					rc.startTLS(e.clientTLS())
				}
				rc.send("a LOGIN carol@a.test carol-secret\r\n")
				if l := tagged(t, rc, "a"); !strings.HasPrefix(l, "a OK") {
					t.Fatalf("login: %q", l)
				}
				reqs := svc.from(tc.src)
				if len(reqs) != 1 {
					t.Fatalf("the auth service got %d requests, want 1", len(reqs))
				}
				if reqs[0].SSL != tc.want {
					t.Errorf("Auth-SSL: %q, want %q", reqs[0].SSL, tc.want)
				}
			})
		}
	})

	t.Run("Auth-Pass answer", func(t *testing.T) {
		const src = "127.0.18.124"
		rc := rawDial(t, src, e.plainAddr)
		rc.send("a LOGIN carol@a.test otp-123\r\n")
		if l := tagged(t, rc, "a"); !strings.HasPrefix(l, "a OK") {
			t.Fatalf("login with a one-time password the service swaps for the real one: %q", l)
		}
		rc.send("b SELECT INBOX\r\n")
		rc.expect(fmt.Sprintf("* %d EXISTS", messageCount["carol@a.test"]))
		b.d1.WaitLog(t, `Login: user=<carol@a\.test>, method=PLAIN, rip=127\.0\.18\.124,`)
		if reqs := svc.from(src); len(reqs) != 1 || reqs[0].Pass != "otp-123" {
			t.Errorf("the service was asked %+v, want one request with Auth-Pass: otp-123", reqs)
		}
	})

	t.Run("Auth-Error-Code", func(t *testing.T) {
		rc := rawDial(t, "127.0.18.125", e.plainAddr)
		rc.send("a LOGIN temp@a.test some-password\r\n")
		if l := tagged(t, rc, "a"); l != "a NO [UNAVAILABLE] Temporary failure" {
			t.Errorf("answer %q, want a NO [UNAVAILABLE] Temporary failure", l)
		}
	})
}

// TestIdentityUniformFailures: a wrong password, an unknown account, a
// domain no route serves and (with an auth_http source) a refusal are
// answered alike and counted alike, with auth_failure_delay at its
// default. The delays are only reported.
func TestIdentityUniformFailures(t *testing.T) {
	b := newIDBackends(t)
	files := b.pipegate(t, b.fileRouting(), "")
	svc := startAuthService(t, authHTTPAnswer(b))
	viaHTTP := b.pipegate(t, httpRouting(svc), "")

	// fail logs in from src through e with the command line cmd and returns
	// the answer, checking that exactly one more failed login is counted.
	fail := func(t *testing.T, e *env, src, cmd string) string {
		t.Helper()
		before := loginCounts(t, e)
		rc := rawDial(t, src, e.plainAddr)
		start := time.Now()
		rc.send("a %s\r\n", cmd)
		l := tagged(t, rc, "a")
		t.Logf("%s: %q after %v (informative)", cmd, l, time.Since(start).Round(time.Millisecond))
		if !strings.HasPrefix(l, "a NO") {
			t.Fatalf("%s: %q, want a NO", cmd, l)
		}
		var after map[string]int
		waitUntil(t, "the failed login is counted", func() bool {
			after = loginCounts(t, e)
			return after["failed"] > before["failed"]
		})
		for result, n := range after {
			want := before[result]
			if result == "failed" {
				want++
			}
			if n != want {
				t.Errorf("%s: pipegate_imap_logins_total{result=%q} went from %d to %d, want %d", cmd, result, before[result], n, want)
			}
		}
		return l
	}

	texts := map[string]string{}
	for i, tc := range []struct{ name, cmd string }{
		{"wrong password", "LOGIN alice@a.test wrong-password"},
		{"unknown account", "LOGIN nobody@a.test some-password"},
		{"unserved domain", "LOGIN x@nowhere.test some-password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := fail(t, files, fmt.Sprintf("127.0.19.%d", 10+i), tc.cmd)
			texts[tc.name] = strings.TrimPrefix(l, "a ")
		})
	}
	first := texts["wrong password"]
	for name, text := range texts {
		if text != first {
			t.Errorf("%s answered %q, a wrong password %q: the answers tell them apart", name, text, first)
		}
	}
	t.Run("refused name", func(t *testing.T) {
		fail(t, files, "127.0.19.13", `LOGIN "x y@a.test" some-password`)
	})
	t.Run("auth_http refusal", func(t *testing.T) {
		l := fail(t, viaHTTP, "127.0.19.14", "LOGIN alice@a.test alice-secret")
		if !strings.Contains(l, "Account blocked") {
			t.Errorf("the service's text is not relayed: %q", l)
		}
	})
}

// TestIdentityPreloginLimit: max_prelogin_connections_per_ip counts the
// connections of one address that have not logged in; the one beyond gets
// BYE, other addresses and logged-in sessions are not affected. The
// default is 100.
func TestIdentityPreloginLimit(t *testing.T) {
	b := newIDBackends(t)

	refusedGreeting := func(t *testing.T, src, addr string) {
		t.Helper()
		rc := newRaw(t, dialFrom(t, src, addr))
		out, err := rc.untilClosed()
		if !strings.HasPrefix(out, "* BYE") || strings.Contains(out, "* OK") {
			t.Errorf("connection beyond the limit from %s: %q (%v), want * BYE and the end", src, out, err)
		}
	}

	t.Run("limit 3", func(t *testing.T) {
		e := b.pipegate(t, b.fileRouting(), quick+"max_prelogin_connections_per_ip: 3\n")
		const src = "127.0.19.50"
		var held []*rawClient
		for range 3 {
			held = append(held, rawDial(t, src, e.plainAddr))
		}
		refusedGreeting(t, src, e.plainAddr)
		rawDial(t, "127.0.19.51", e.plainAddr) // another address is served

		// A session that logs in no longer counts.
		held[0].send("a LOGIN alice@a.test alice-secret\r\n")
		if l := tagged(t, held[0], "a"); !strings.HasPrefix(l, "a OK") {
			t.Fatalf("login: %q", l)
		}
		held[0].send("b NOOP\r\n") // answered through the pipe: handed over
		held[0].expect("b OK")
		rawDial(t, src, e.plainAddr)
		refusedGreeting(t, src, e.plainAddr) // and the limit still holds
	})

	t.Run("default", func(t *testing.T) {
		e := b.pipegate(t, b.fileRouting(), quick)
		const src = "127.0.19.60"
		for range 100 {
			rawDial(t, src, e.plainAddr)
		}
		refusedGreeting(t, src, e.plainAddr)
	})

	t.Run("0 is unlimited", func(t *testing.T) {
		e := b.pipegate(t, b.fileRouting(), quick+"max_prelogin_connections_per_ip: 0\n")
		for range 101 {
			rawDial(t, "127.0.19.70", e.plainAddr) // each reads its * OK greeting
		}
	})
}

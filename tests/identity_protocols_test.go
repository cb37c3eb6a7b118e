package tests

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// TestIdentityEveryProtocol (issue 17): every rule on the account name
// holds for every protocol the gateway serves, through `pipegate mail`
// with one listener per protocol: a name or password with NUL, CR or LF,
// a name outside username_chars and an authzid of another user are all
// refused with the protocol's own refusal before any route lookup (the
// auth_http service is never asked), and a client address over the
// pre-login limit gets the protocol's goodbye.
func TestIdentityEveryProtocol(t *testing.T) {
	svc := startAuthService(t, func(idAuthRequest) map[string]string {
		return map[string]string{"Auth-Status": "Invalid login"}
	})
	addrs := map[string]string{}
	listeners := ""
	for _, p := range []string{"imap", "pop3", "sieve", "submission"} {
		addrs[p] = testenv.FreeAddr(t)
		listeners += fmt.Sprintf("  - addr: %s\n    protocol: %s\n", addrs[p], p)
	}
	dir := t.TempDir()
	proc := startMail(t, dir, "listen:\n"+listeners+httpRouting(svc)+`allow_plaintext_auth: true
auth_failure_delay: 0s
auth_penalty: {base: 1ms, max: 5ms}
max_login_failures: 100
max_prelogin_connections_per_ip: 2
drain_timeout: 5s
`, nil, addrs["imap"], addrs["pop3"], addrs["sieve"], addrs["submission"])

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pipegate log:\n%s", proc.log())
		}
	})
	b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	type login struct {
		name     string
		user     string // for AUTHENTICATE/AUTH LOGIN
		pass     string
		authzid  string // PLAIN's, when set
		viaPlain bool
	}
	logins := []login{
		{name: "NUL split", user: "bob@a.test\x00alice@a.test", pass: "pw"},
		{name: "CR in the name", user: "bob@a.test\rx", pass: "pw"},
		{name: "LF in the password", user: "bob@a.test", pass: "p\nw", viaPlain: true},
		{name: "outside username_chars", user: "bob smith@a.test", pass: "pw"},
		{name: "authzid of another user", user: "bob@a.test", pass: "pw", authzid: "alice@a.test", viaPlain: true},
	}
	// Each protocol: how to greet, how to send one login, what its refusal
	// looks like.
	type dialogue struct {
		greet   func(rc *rawClient)
		login   func(rc *rawClient, l login) string // returns the final answer line
		refused func(answer string) bool
		goodbye string // prefix of the answer over the pre-login limit
	}
	plainIR := func(l login) string { return b(l.authzid + "\x00" + l.user + "\x00" + l.pass) }
	protocols := map[string]dialogue{
		"imap": {
			greet: func(rc *rawClient) { rc.expect("* OK") },
			login: func(rc *rawClient, l login) string {
				if l.viaPlain {
					rc.send("a AUTHENTICATE PLAIN %s\r\n", plainIR(l))
					return rc.expect("a ")
				}
				rc.send("a AUTHENTICATE LOGIN %s\r\n", b(l.user))
				rc.expect("+ ")
				rc.send("%s\r\n", b(l.pass))
				return rc.expect("a ")
			},
			refused: func(a string) bool { return strings.HasPrefix(a, "a NO") || strings.HasPrefix(a, "a BAD") },
			goodbye: "* BYE",
		},
		"pop3": {
			greet: func(rc *rawClient) { rc.expect("+OK") },
			login: func(rc *rawClient, l login) string {
				if l.viaPlain {
					rc.send("AUTH PLAIN %s\r\n", plainIR(l))
					return rc.expect("")
				}
				rc.send("AUTH LOGIN %s\r\n", b(l.user))
				rc.expect("+ ")
				rc.send("%s\r\n", b(l.pass))
				return rc.expect("")
			},
			refused: func(a string) bool { return strings.HasPrefix(a, "-ERR") },
			goodbye: "-ERR",
		},
		"sieve": {
			greet: func(rc *rawClient) { rc.expect("OK") },
			login: func(rc *rawClient, l login) string {
				if l.viaPlain {
					rc.send("AUTHENTICATE \"PLAIN\" \"%s\"\r\n", plainIR(l))
					return rc.expect("")
				}
				rc.send("AUTHENTICATE \"LOGIN\" \"%s\"\r\n", b(l.user))
				rc.expect("\"")
				rc.send("\"%s\"\r\n", b(l.pass))
				return rc.expect("")
			},
			refused: func(a string) bool { return strings.HasPrefix(a, "NO") },
			goodbye: "BYE",
		},
		"submission": {
			greet: func(rc *rawClient) {
				rc.expect("220 ")
				rc.send("EHLO client.test\r\n")
				rc.expect("250 ")
			},
			login: func(rc *rawClient, l login) string {
				if l.viaPlain {
					rc.send("AUTH PLAIN %s\r\n", plainIR(l))
					return rc.expect("")
				}
				rc.send("AUTH LOGIN %s\r\n", b(l.user))
				rc.expect("334 ")
				rc.send("%s\r\n", b(l.pass))
				return rc.expect("")
			},
			refused: func(a string) bool { return strings.HasPrefix(a, "535 ") },
			goodbye: "421 ",
		},
	}
	// The pre-login limit is one per client address for the whole daemon:
	// an IMAP and a POP3 connection use it up for ManageSieve too.
	t.Run("shared limit", func(t *testing.T) {
		const src = "127.0.21.9"
		imap := newRaw(t, dialFrom(t, src, addrs["imap"]))
		protocols["imap"].greet(imap)
		pop := newRaw(t, dialFrom(t, src, addrs["pop3"]))
		protocols["pop3"].greet(pop)
		sieve := newRaw(t, dialFrom(t, src, addrs["sieve"]))
		if l := sieve.expect(""); !strings.HasPrefix(l, protocols["sieve"].goodbye) {
			t.Errorf("third pre-login connection from one address, on another protocol: %q, want %q...", l, protocols["sieve"].goodbye)
		}
	})
	for i, p := range []string{"imap", "pop3", "sieve", "submission"} {
		d := protocols[p]
		src := fmt.Sprintf("127.0.21.%d", i+1)
		t.Run(p, func(t *testing.T) {
			rc := newRaw(t, dialFrom(t, src, addrs[p]))
			d.greet(rc)
			for _, l := range logins {
				if a := d.login(rc, l); !d.refused(a) {
					t.Errorf("%s: %s: answer %q, want the protocol's refusal", p, l.name, a)
				}
			}
			if reqs := svc.from(src); len(reqs) != 0 {
				t.Errorf("%s: the route source was asked %d times for refused names: %+v", p, len(reqs), reqs)
			}
			// The pre-login limit is 2: rc and one more are served, the
			// third gets the protocol's goodbye before any greeting.
			rc2 := newRaw(t, dialFrom(t, src, addrs[p]))
			d.greet(rc2)
			rc3 := newRaw(t, dialFrom(t, src, addrs[p]))
			if l := rc3.expect(""); !strings.HasPrefix(l, d.goodbye) {
				t.Errorf("%s: third pre-login connection from one address got %q, want %q...", p, l, d.goodbye)
			}
		})
	}
}

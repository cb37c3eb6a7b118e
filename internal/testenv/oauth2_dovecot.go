package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// OAuth2Options set up Dovecot's oauth2 passdb (StartDovecotOAuth2).
type OAuth2Options struct {
	// Server is the introspection endpoint the passdb asks, in its Mode.
	Server *OAuth2Server
	// Passwords, when true, keeps DovecotOptions.Users' passwords for
	// PLAIN and LOGIN in a passdb of their own: both kinds of login work.
	// Else only XOAUTH2 and OAUTHBEARER are offered.
	Passwords bool
}

// StartDovecotOAuth2 starts Dovecot (as StartDovecot) with the
// mechanisms XOAUTH2 and OAUTHBEARER, whose tokens its oauth2 passdb
// checks at o.Server (username_attribute email, active_attribute active,
// and Dovecot's default username_format %Lu: the token's user must be the
// name logged in with, in lower case). opts.Users are the accounts (their
// homes, the userdb); their passwords count only with o.Passwords.
// opts.Passdb must be empty. auth_failure_delay is 0, so that a refused
// token is answered at once; Dovecot's auth penalty for the client's
// address still applies.
//
//	srv := testenv.StartOAuth2Server(t, testenv.IntrospectPost)
//	srv.AddToken("tok-alice", "alice@a.test")
//	d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
//		Users: map[string]string{"alice@a.test": "secret"},
//	}, testenv.OAuth2Options{Server: srv, Passwords: true})
//	// AUTHENTICATE XOAUTH2 base64("user=alice@a.test\x01auth=Bearer tok-alice\x01\x01")
func StartDovecotOAuth2(t testing.TB, opts DovecotOptions, o OAuth2Options) *Dovecot {
	t.Helper()
	if opts.Passdb != "" {
		t.Fatal("testenv: StartDovecotOAuth2: DovecotOptions.Passdb must be empty (the oauth2 passdb replaces it)")
	}
	if o.Server == nil {
		t.Fatal("testenv: StartDovecotOAuth2: no OAuth2Options.Server")
	}
	// Dovecot's auth process reads these files after dropping root: a
	// directory of its own, readable by all (t.TempDir's parents are not).
	dir, err := sharedTempDir("oauth2")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	passdb, err := writeOAuth2Files(dir, opts.Users, o)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	opts.Passdb = passdb
	// The template's auth_mechanisms comes first: the later one wins.
	mechs := "xoauth2 oauthbearer"
	if o.Passwords {
		mechs = "plain login " + mechs
	}
	opts.Extra = "auth_mechanisms = " + mechs + "\nauth_verbose = yes\nauth_failure_delay = 0\n" + opts.Extra
	return StartDovecot(t, opts)
}

// writeOAuth2Files writes dovecot-oauth2.conf.ext (and, with o.Passwords,
// a passwd-file of the users' passwords) into dir and returns the passdb
// blocks that use them.
func writeOAuth2Files(dir string, users map[string]string, o OAuth2Options) (string, error) {
	conf := filepath.Join(dir, "dovecot-oauth2.conf.ext")
	data := "introspection_url = " + o.Server.URL + "\n" +
		"introspection_mode = " + o.Server.Mode + "\n" +
		"username_attribute = email\n" +
		"active_attribute = active\n" +
		"active_value = true\n" +
		"timeout_msecs = 10000\n"
	if err := os.WriteFile(conf, []byte(data), 0o644); err != nil {
		return "", fmt.Errorf("dovecot oauth2: %w", err)
	}
	passdb := "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = " + conf + "\n}\n"
	if !o.Passwords {
		return passdb, nil
	}
	accounts := make([]string, 0, len(users))
	for a := range users {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	var b strings.Builder
	for _, a := range accounts {
		if strings.ContainsAny(a+users[a], ":\n") {
			return "", fmt.Errorf("dovecot oauth2: user %q: account and password must not hold ':' or newlines", a)
		}
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", a, users[a])
	}
	pw := filepath.Join(dir, "passwords")
	if err := os.WriteFile(pw, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("dovecot oauth2: %w", err)
	}
	return "passdb {\n  driver = passwd-file\n  mechanisms = plain login\n  args = scheme=PLAIN username_format=%u " + pw + "\n}\n" + passdb, nil
}

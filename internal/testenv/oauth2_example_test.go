package testenv_test

import (
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// A test starts a token introspection endpoint with one valid token and a
// Dovecot whose oauth2 passdb asks it; passwords work too. After a login
// it checks what Dovecot logged and which token the endpoint was asked
// about.
func ExampleStartDovecotOAuth2() {
	var t *testing.T // the test's
	tokens := testenv.StartOAuth2Server(t, testenv.IntrospectPost)
	tokens.AddToken("tok-alice", "alice@a.test")
	tokens.FailToken("tok-down") // the authorization server fails for this one
	d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
		Users:     map[string]string{"alice@a.test": "secret"},
		Protocols: []string{testenv.IMAP, testenv.Submission},
	}, testenv.OAuth2Options{Server: tokens, Passwords: true})
	// ... AUTHENTICATE XOAUTH2 base64("user=alice@a.test\x01auth=Bearer tok-alice\x01\x01") ...
	d.WaitLog(t, `Login: user=<alice@a\.test>, method=XOAUTH2`)
	_ = tokens.Tokens() // ["tok-alice"], as received
}

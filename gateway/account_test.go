package gateway_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
)

func TestAccountRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   gateway.AccountRules
		creds   sasl.Credentials
		account string // "" : refused
	}{
		{"plain name", gateway.AccountRules{}, sasl.Credentials{Authcid: "alice@a.test", Password: "pw"}, "alice@a.test"},
		{"NUL in name", gateway.AccountRules{}, sasl.Credentials{Authcid: "bob@a.test\x00alice@a.test"}, ""},
		{"NUL in name, any printable", gateway.AccountRules{AnyPrintable: true}, sasl.Credentials{Authcid: "bob@a.test\x00alice@a.test"}, ""},
		{"CR in name", gateway.AccountRules{AnyPrintable: true}, sasl.Credentials{Authcid: "bob\r@a.test"}, ""},
		{"LF in password", gateway.AccountRules{}, sasl.Credentials{Authcid: "bob@a.test", Password: "p\nw"}, ""},
		{"NUL in password", gateway.AccountRules{}, sasl.Credentials{Authcid: "bob@a.test", Password: "p\x00w"}, ""},
		{"space outside default chars", gateway.AccountRules{}, sasl.Credentials{Authcid: "bob smith@a.test"}, ""},
		{"UTF-8 outside default chars", gateway.AccountRules{}, sasl.Credentials{Authcid: "jörg@a.test"}, ""},
		{"UTF-8 any printable", gateway.AccountRules{AnyPrintable: true}, sasl.Credentials{Authcid: "jörg@a.test"}, "jörg@a.test"},
		{"invalid UTF-8", gateway.AccountRules{AnyPrintable: true}, sasl.Credentials{Authcid: "j\xffrg@a.test"}, ""},
		{"tab not printable", gateway.AccountRules{AnyPrintable: true}, sasl.Credentials{Authcid: "a\tb"}, ""},
		{"own chars", gateway.AccountRules{Chars: "abc@."}, sasl.Credentials{Authcid: "abc@a.c"}, "abc@a.c"},
		{"own chars refuse", gateway.AccountRules{Chars: "abc@."}, sasl.Credentials{Authcid: "abd@a.c"}, ""},
		{"lowercase", gateway.AccountRules{Format: gateway.FormatLowercase}, sasl.Credentials{Authcid: "Alice@A.Test"}, "alice@a.test"},
		{"lowercase ASCII only", gateway.AccountRules{Format: gateway.FormatLowercase, AnyPrintable: true}, sasl.Credentials{Authcid: "\u212AATE@\u00c4.Test"}, "\u212Aate@\u00c4.test"},
		{"too long", gateway.AccountRules{}, sasl.Credentials{Authcid: string(make([]byte, 300))}, ""},
		{"empty", gateway.AccountRules{}, sasl.Credentials{}, ""},
		{"authzid refused", gateway.AccountRules{}, sasl.Credentials{Authzid: "carol@a.test", Authcid: "alice@a.test"}, ""},
		{"authzid master", gateway.AccountRules{AllowMasterUsers: true}, sasl.Credentials{Authzid: "carol@a.test", Authcid: "admin"}, "carol@a.test"},
		{"authzid equal after lowercase", gateway.AccountRules{Format: gateway.FormatLowercase}, sasl.Credentials{Authzid: "ALICE@a.test", Authcid: "alice@a.test"}, "alice@a.test"},
		{"OAuth field with LF", gateway.AccountRules{}, sasl.Credentials{Mechanism: sasl.XOAuth2, Authcid: "a@b", Fields: []string{"auth=Bearer x\ny"}}, ""},
		{"default domain", gateway.AccountRules{DefaultDomain: "a.test"}, sasl.Credentials{Authcid: "alice"}, "alice@a.test"},
		{"default domain, name with one", gateway.AccountRules{DefaultDomain: "a.test"}, sasl.Credentials{Authcid: "alice@b.test"}, "alice@b.test"},
		{"default domain, then lowercase", gateway.AccountRules{DefaultDomain: "A.Test", Format: gateway.FormatLowercase}, sasl.Credentials{Authcid: "Alice"}, "alice@a.test"},
		{"default domain, master and user alike", gateway.AccountRules{DefaultDomain: "a.test", AllowMasterUsers: true}, sasl.Credentials{Authzid: "carol", Authcid: "admin"}, "carol@a.test"},
		{"default domain, too long with it", gateway.AccountRules{DefaultDomain: "a.test"}, sasl.Credentials{Authcid: string(bytesOf('a', 252))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.rules.Decide(tc.creds)
			if tc.account == "" {
				var r *gateway.Refused
				if !errors.As(err, &r) || r.Text == "" {
					t.Fatalf("Decide = %+v, %v; want *Refused", l, err)
				}
				return
			}
			if err != nil || l.Account != tc.account {
				t.Fatalf("Decide = %q, %v; want %q", l.Account, err, tc.account)
			}
		})
	}
}

func ExampleAccountRules_Decide() {
	rules := gateway.AccountRules{Format: gateway.FormatLowercase}
	l, err := rules.Decide(sasl.Credentials{Authcid: "Alice@Example.ORG", Password: "secret"})
	fmt.Println(l.Account, err)
	_, err = rules.Decide(sasl.Credentials{Authcid: "bob@example.org\x00alice@example.org", Password: "x"})
	fmt.Println(err)
	// Output:
	// alice@example.org <nil>
	// login refused: user name holds NUL, CR or LF
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestCheckDefaultDomain: a default domain holds what a name may hold,
// and no '@'.
func TestCheckDefaultDomain(t *testing.T) {
	for _, tc := range []struct {
		rules gateway.AccountRules
		ok    bool
	}{
		{gateway.AccountRules{}, true},
		{gateway.AccountRules{DefaultDomain: "example.com"}, true},
		{gateway.AccountRules{DefaultDomain: "@example.com"}, false},
		{gateway.AccountRules{DefaultDomain: "exa mple.com"}, false},
		{gateway.AccountRules{DefaultDomain: "exämple.com"}, false},
		{gateway.AccountRules{DefaultDomain: "exämple.com", AnyPrintable: true}, true},
		{gateway.AccountRules{DefaultDomain: string(bytesOf('a', 254))}, false},
		// Names would get an '@' that username_chars forbids (Dovecot checks
		// its chars after adding auth_default_realm).
		{gateway.AccountRules{Chars: "abcdefghijklmnopqrstuvwxyz.", DefaultDomain: "a.test"}, false},
	} {
		if err := tc.rules.CheckDefaultDomain(); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.rules.DefaultDomain, err, tc.ok)
		}
	}
}

package submission

import (
	"bufio"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission/wire"
)

// FuzzAuthIdentity: whatever a client sends as AUTH (initial response and
// one continuation line), the name the backend logs in is byte for byte
// the account that was decided, routed and logged (issue 17). The
// client's command goes through the real parser and SASL decoding, the
// backend's message is built as backend_login.go builds it and decoded
// as a backend would.
func FuzzAuthIdentity(f *testing.F) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add("AUTH PLAIN "+enc("\x00alice@a.test\x00secret"), "", false, false)
	f.Add("AUTH PLAIN "+enc("\x00bob@a.test\x00alice@a.test\x00pw"), "", false, false)
	f.Add("AUTH PLAIN "+enc("carol@a.test\x00alice@a.test\x00pw"), "", false, true)
	f.Add("AUTH LOGIN "+enc("Bob@A.test"), enc("pw"), true, false)
	f.Add("AUTH LOGIN "+enc("bob@a.test\x00alice@a.test"), enc("pw"), false, false)
	f.Add("AUTH PLAIN", enc("\x00dave@a.test\x00pw"), false, false)
	f.Add("AUTH XOAUTH2 "+enc("user=Bob@a.test\x01auth=Bearer t\x01\x01"), "", true, false)
	f.Add("AUTH OAUTHBEARER "+enc("n,a=b=2Cob@a.test,\x01host=h\x01auth=Bearer t\x01\x01"), "", false, false)
	f.Fuzz(func(t *testing.T, line, answer string, lower, master bool) {
		rules := gateway.AccountRules{AllowMasterUsers: master, AnyPrintable: len(line)%2 == 0}
		if lower {
			rules.Format = gateway.FormatLowercase
		}
		rd := wire.NewReader(bufio.NewReader(strings.NewReader(line + "\r\n" + answer + "\r\n")))
		rd.MaxAuthCommand = DefaultMaxAuthCommand
		cmd, err := rd.ReadCommand()
		if err != nil || cmd.Verb != "AUTH" {
			return
		}
		args := cmd.Args()
		if len(args) < 1 || len(args) > 2 {
			return
		}
		var initial []byte
		if len(args) == 2 {
			if initial, err = wire.DecodeInitialResponse(args[1]); err != nil {
				return
			}
		}
		creds, err := sasl.Decode(strings.ToUpper(args[0]), initial, func([]byte) ([]byte, error) {
			l, err := rd.ReadAuthLine()
			if err != nil {
				return nil, err
			}
			data, cancel, err := wire.DecodeResponse(l)
			if cancel {
				return nil, sasl.ErrCancelled
			}
			return data, err
		})
		if err != nil {
			return
		}
		lg, err := rules.Decide(creds)
		if err != nil {
			return
		}
		if strings.ContainsAny(lg.Account, "\x00\r\n") {
			t.Fatalf("decided account %q holds NUL, CR or LF", lg.Account)
		}
		var msg []byte
		mech := lg.Creds.Mechanism
		if msg = lg.Creds.Message(lg.Account); msg == nil {
			authz, user, pass := passwordLogin(lg, route.Route{})
			msg, mech = []byte(authz+"\x00"+user+"\x00"+pass), sasl.Plain
		}
		got, err := sasl.Decode(mech, msg, nil)
		if err != nil {
			t.Fatalf("the backend could not decode %q: %v", msg, err)
		}
		sent := got.Authcid
		if got.Authzid != "" {
			sent = got.Authzid // a master login: the account is the authzid
		}
		if sent != lg.Account {
			t.Fatalf("routed %q, backend logs in %q (from %q)", lg.Account, sent, line)
		}
	})
}

package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/pop3/wire"
	"github.com/pipegate/pipegate/route"
)

// FuzzLoginIdentity: whatever a client sends as USER/PASS or AUTH, the
// name the backend is sent is byte for byte the account that was decided,
// routed and logged, and the login is exactly the commands planned (no
// line added). The client's lines go through the real pre-login parser
// and SASL decoding, the backend's are read back with the parser a POP3
// server would use.
func FuzzLoginIdentity(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add("USER alice@a.test", "PASS open sesame", false, false, false)
	f.Add("USER Bob@A.test", "PASS p\x00w", true, true, false)
	f.Add("AUTH PLAIN "+b64("\x00bob@a.test\x00pw"), "", false, true, false)
	f.Add("AUTH PLAIN "+b64("carol@a.test\x00alice@a.test\x00pw"), "", false, false, true)
	f.Add("AUTH LOGIN "+b64("bob@a.test\x00alice@a.test"), b64("pw"), false, true, false)
	f.Add("AUTH XOAUTH2 "+b64("user=Bob@a.test\x01auth=Bearer t\x01\x01"), "", true, false, false)
	f.Add("AUTH OAUTHBEARER "+b64("n,a=b=2Cob@a.test,\x01host=h\x01auth=Bearer t\x01\x01"), "", false, false, false)
	f.Fuzz(func(t *testing.T, first, second string, lower, saslPlain, master bool) {
		rules := gateway.AccountRules{AllowMasterUsers: master, AnyPrintable: len(first)%2 == 0}
		if lower {
			rules.Format = gateway.FormatLowercase
		}
		rd := wire.NewReader(bufio.NewReader(strings.NewReader(first + "\r\n" + second + "\r\n")))
		rd.MaxAuthLine = DefaultMaxAuthLineLength
		cmd, err := rd.ReadCommand()
		if err != nil {
			return
		}
		var creds sasl.Credentials
		switch cmd.Name {
		case "USER":
			pass, err := rd.ReadCommand()
			if err != nil || pass.Name != "PASS" {
				return
			}
			creds = sasl.Credentials{Authcid: cmd.Rest, Password: pass.Rest}
		case "AUTH":
			if len(cmd.Args) != 2 {
				return
			}
			ir, err := wire.DecodeInitialResponse(cmd.Args[1])
			if err != nil {
				return
			}
			creds, err = sasl.Decode(strings.ToUpper(cmd.Args[0]), ir, func([]byte) ([]byte, error) {
				line, err := rd.ReadSASLResponse()
				if err != nil {
					return nil, err
				}
				data, _, err := wire.DecodeResponse(line)
				return data, err
			})
			if err != nil {
				return
			}
		default:
			return
		}
		lg, err := rules.Decide(creds)
		if err != nil {
			return
		}
		var caps wire.Capabilities
		if saslPlain {
			caps = wire.ParseCapa([]string{"SASL PLAIN"})
		}
		plan := planLogin(lg, route.Route{}, caps)
		if plan.refuse != "" { // nothing is sent: only for what USER/PASS cannot carry
			if plan.mech != "" || wire.CanCarry(lg.Authcid) && wire.CanCarry(lg.Password) {
				t.Fatalf("login of %q refused: %s", lg.Account, plan.refuse)
			}
			return
		}

		// What the backend reads.
		var out bytes.Buffer
		if plan.mech != "" {
			out.WriteString("AUTH " + plan.mech + " " + base64.StdEncoding.EncodeToString(plan.msg) + "\r\n")
		} else {
			out.WriteString("USER " + plan.user + "\r\nPASS " + plan.pass + "\r\n")
		}
		brd := wire.NewReader(bufio.NewReader(&out))
		brd.MaxAuthLine = 1 << 20
		brd.MaxLine = 1 << 20
		got, err := brd.ReadCommand()
		if err != nil {
			t.Fatalf("backend cannot parse the login of %q: %v", lg.Account, err)
		}
		var name string
		switch got.Name {
		case "USER":
			name = got.Rest
			pass, err := brd.ReadCommand()
			if err != nil || pass.Name != "PASS" || pass.Rest != lg.Password {
				t.Fatalf("PASS: %+v, %v", pass, err)
			}
		case "AUTH":
			msg, err := wire.DecodeInitialResponse(got.Args[1])
			if err != nil {
				t.Fatal(err)
			}
			back, err := sasl.Decode(got.Args[0], msg, nil)
			if err != nil {
				t.Fatalf("backend cannot decode %s %q: %v", got.Args[0], msg, err)
			}
			name = back.Authcid
			if back.Authzid != "" {
				name = back.Authzid
			}
		}
		if name != lg.Account {
			t.Fatalf("backend logs in %q, the account routed and logged is %q", name, lg.Account)
		}
		if rest, _ := brd.ReadCommand(); rest != nil {
			t.Fatalf("an extra command reached the backend: %+v", rest)
		}
	})
}

package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/imap/wire"
)

// FuzzLoginIdentity: whatever a client sends as LOGIN or AUTHENTICATE,
// the name the backend is sent is byte for byte the account that was
// decided, routed and logged. The client's command goes through the real
// pre-login parser and SASL decoding, the backend's through the real
// writers (LOGIN, AUTHENTICATE PLAIN, the rebuilt OAuth messages), and is
// read back with the parser a backend would use.
func FuzzLoginIdentity(f *testing.F) {
	f.Add("a LOGIN alice@a.test secret", false, false)
	f.Add("a LOGIN {23+}\r\nbob@a.test\x00alice@a.test pass-bob", false, false)
	f.Add("a LOGIN \"ALICE@A.TEST\" \"p\\\"w\"", true, false)
	f.Add("a AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00bob@a.test\x00pw")), false, false)
	f.Add("a AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("carol@a.test\x00alice@a.test\x00pw")), false, true)
	f.Add("a AUTHENTICATE XOAUTH2 "+base64.StdEncoding.EncodeToString([]byte("user=Bob@a.test\x01auth=Bearer t\x01\x01")), true, false)
	f.Add("a AUTHENTICATE OAUTHBEARER "+base64.StdEncoding.EncodeToString([]byte("n,a=b=2Cob@a.test,\x01host=h\x01auth=Bearer t\x01\x01")), false, false)
	f.Fuzz(func(t *testing.T, line string, lower, master bool) {
		rules := gateway.AccountRules{AllowMasterUsers: master, AnyPrintable: len(line)%2 == 0}
		if lower {
			rules.Format = gateway.FormatLowercase
		}
		rd := wire.NewReader(bufio.NewReader(strings.NewReader(line + "\r\n")))
		rd.Continue = func(int64) error { return nil }
		cmd, err := rd.ReadCommand()
		if err != nil {
			return
		}
		var creds sasl.Credentials
		switch cmd.Name {
		case "LOGIN":
			args, err := cmd.AStrings(2)
			if err != nil {
				return
			}
			creds = sasl.Credentials{Authcid: args[0], Password: args[1]}
		case "AUTHENTICATE":
			if len(cmd.Args) != 2 || cmd.Args[0].Kind != wire.KindAtom || cmd.Args[1].Kind != wire.KindAtom {
				return
			}
			ir, err := sasl.DecodeResponse(cmd.Args[1].Str)
			if err != nil {
				return
			}
			mech := strings.ToUpper(cmd.Args[0].Str)
			creds, err = sasl.Decode(mech, ir, func([]byte) ([]byte, error) { return []byte("x"), nil })
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
		if strings.ContainsAny(lg.Account, "\x00\r\n") {
			t.Fatalf("decided account %q holds NUL, CR or LF", lg.Account)
		}
		sent := sentName(t, lg)
		if sent != lg.Account {
			t.Fatalf("routed %q, backend logs in %q (from %q)", lg.Account, sent, line)
		}
	})
}

// sentName writes the backend's login command for lg as backend_login.go
// does and reads back the name a backend would log in.
func sentName(t *testing.T, lg gateway.Login) string {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := &wire.Writer{W: bw, LiteralPlus: true}
	var pw string
	if msg := lg.Creds.Message(lg.Account); msg != nil {
		w.Atom("b").SP().Atom("AUTHENTICATE").SP().Atom(lg.Creds.Mechanism).SP().Atom(base64.StdEncoding.EncodeToString(msg)).CRLF()
	} else if lg.Master() {
		msg := lg.Account + "\x00" + lg.Authcid + "\x00" + lg.Password
		w.Atom("b").SP().Atom("AUTHENTICATE").SP().Atom("PLAIN").SP().Atom(base64.StdEncoding.EncodeToString([]byte(msg))).CRLF()
	} else {
		w.Atom("b").SP().Atom("LOGIN").SP().String(lg.Authcid).SP().String(lg.Password).CRLF()
		pw = lg.Password
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("write: %v", err)
	}
	rd := wire.NewReader(bufio.NewReader(&buf))
	rd.MaxLine, rd.MaxLiteral = 1<<20, 1<<20
	cmd, err := rd.ReadCommand()
	if err != nil {
		t.Fatalf("the backend could not read %q: %v", buf.String(), err)
	}
	if cmd.Name == "LOGIN" {
		args, err := cmd.AStrings(2)
		if err != nil || args[1] != pw {
			t.Fatalf("backend LOGIN %+v: %v", cmd.Args, err)
		}
		return args[0]
	}
	ir, err := sasl.DecodeResponse(cmd.Args[1].Str)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := sasl.Decode(cmd.Args[0].Str, ir, nil)
	if err != nil {
		t.Fatalf("the backend could not decode %q: %v", ir, err)
	}
	if creds.Authzid != "" {
		return creds.Authzid // a master login: the account is the authzid
	}
	return creds.Authcid
}

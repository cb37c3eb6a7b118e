package sasl_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/pipegate/pipegate/gateway/sasl"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		mech    string
		initial string
		answers []string // to the challenges, in order
		want    sasl.Credentials
		err     bool
	}{
		{mech: "PLAIN", initial: "\x00alice\x00pw", want: sasl.Credentials{Mechanism: "PLAIN", Authcid: "alice", Password: "pw"}},
		{mech: "PLAIN", answers: []string{"carol\x00alice\x00pw"}, want: sasl.Credentials{Mechanism: "PLAIN", Authzid: "carol", Authcid: "alice", Password: "pw"}},
		{mech: "PLAIN", initial: "alice\x00alice\x00pw", want: sasl.Credentials{Mechanism: "PLAIN", Authcid: "alice", Password: "pw"}},
		{mech: "PLAIN", initial: "\x00bob\x00alice\x00pw", err: true},
		{mech: "PLAIN", initial: "\x00\x00pw", err: true},
		{mech: "LOGIN", answers: []string{"alice", "pw"}, want: sasl.Credentials{Mechanism: "LOGIN", Authcid: "alice", Password: "pw"}},
		{mech: "LOGIN", initial: "alice", answers: []string{"pw"}, want: sasl.Credentials{Mechanism: "LOGIN", Authcid: "alice", Password: "pw"}},
		{mech: "LOGIN", answers: []string{"", "pw"}, err: true},
		{mech: "XOAUTH2", initial: "user=a@b\x01auth=Bearer t\x01\x01", want: sasl.Credentials{Mechanism: "XOAUTH2", Authcid: "a@b", Fields: []string{"auth=Bearer t"}}},
		{mech: "XOAUTH2", initial: "auth=Bearer t\x01\x01", err: true},
		{mech: "XOAUTH2", initial: "user=a\x01user=b\x01auth=Bearer t\x01\x01", err: true},
		{mech: "OAUTHBEARER", initial: "n,a=a=2Cb=3Dc@d,\x01host=h\x01auth=Bearer t\x01\x01", want: sasl.Credentials{Mechanism: "OAUTHBEARER", Authcid: "a,b=c@d", GS2Flag: "n", Fields: []string{"host=h", "auth=Bearer t"}}},
		{mech: "OAUTHBEARER", initial: "n,a=x,\x01\x01", want: sasl.Credentials{Mechanism: "OAUTHBEARER", Authcid: "x", GS2Flag: "n"}},
		{mech: "OAUTHBEARER", initial: "n,,\x01auth=Bearer t\x01\x01", err: true},
		{mech: "OAUTHBEARER", initial: "p=x,a=u,\x01auth=Bearer t\x01\x01", err: true},
		{mech: "OAUTHBEARER", initial: "n,a=a=41,\x01\x01", err: true},
	} {
		t.Run(tc.mech+" "+fmt.Sprintf("%q", tc.initial), func(t *testing.T) {
			var initial []byte
			if tc.initial != "" {
				initial = []byte(tc.initial)
			}
			answers := tc.answers
			got, err := sasl.Decode(tc.mech, initial, func([]byte) ([]byte, error) {
				if len(answers) == 0 {
					return nil, errors.New("no more answers")
				}
				a := answers[0]
				answers = answers[1:]
				return []byte(a), nil
			})
			if tc.err {
				var se *sasl.Error
				if !errors.As(err, &se) {
					t.Fatalf("Decode = %+v, %v; want *sasl.Error", got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Decode = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	if _, err := sasl.DecodeResponse("*"); !errors.Is(err, sasl.ErrCancelled) {
		t.Errorf("*: %v", err)
	}
	if b, err := sasl.DecodeResponse("="); err != nil || b == nil || len(b) != 0 {
		t.Errorf("=: %q %v", b, err)
	}
	for _, bad := range []string{"!!", "YW\r\nJj", "YR==", "YWJj\x00"} {
		if _, err := sasl.DecodeResponse(bad); !errors.Is(err, sasl.ErrBase64) {
			t.Errorf("%q: %v, want ErrBase64 (strict base64 only)", bad, err)
		}
	}
	if b, err := sasl.DecodeResponse("YWJj"); err != nil || string(b) != "abc" {
		t.Errorf("YWJj: %q %v", b, err)
	}
	if _, err := sasl.Decode("CRAM-MD5", nil, nil); !errors.Is(err, sasl.ErrUnsupported) {
		t.Errorf("CRAM-MD5: %v", err)
	}
}

// FuzzDecode: whatever the message, Decode does not panic, and an OAuth
// message rebuilt with Message decodes to the same name and fields.
func FuzzDecode(f *testing.F) {
	f.Add("PLAIN", []byte("\x00a\x00b"))
	f.Add("LOGIN", []byte("a"))
	f.Add("XOAUTH2", []byte("user=a@b\x01auth=Bearer t\x01\x01"))
	f.Add("OAUTHBEARER", []byte("n,a=a=2Cb,\x01host=h\x01auth=Bearer t\x01\x01"))
	f.Fuzz(func(t *testing.T, mech string, msg []byte) {
		c, err := sasl.Decode(mech, msg, func([]byte) ([]byte, error) { return []byte("pw"), nil })
		if err != nil {
			return
		}
		if m := c.Message(c.Authcid); m != nil {
			c2, err := sasl.Decode(mech, m, nil)
			if err != nil || c2.Authcid != c.Authcid || fmt.Sprint(c2.Fields) != fmt.Sprint(c.Fields) && len(c.Fields) > 0 {
				t.Fatalf("rebuilt %q from %q: %+v, %v; had %+v", m, msg, c2, err, c)
			}
		}
		if c.Mechanism == sasl.Plain && bytes.Count(msg, []byte{0}) != 2 {
			t.Fatalf("PLAIN with %d NULs accepted", bytes.Count(msg, []byte{0}))
		}
	})
}

func ExampleDecode() {
	initial, _ := base64.StdEncoding.DecodeString("AGFsaWNlQGEudGVzdABzZWNyZXQ=")
	c, err := sasl.Decode(sasl.Plain, initial, nil)
	fmt.Println(c.Authcid, c.Password, err)
	// Output: alice@a.test secret <nil>
}

func TestMechanismName(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "PLAIN", "xOAuth2": "XOAUTH2", "CRAM-MD5": "CRAM-MD5", "scram_sha-1": "SCRAM_SHA-1",
		"pla\u0131n": "PLA\u0131N", "\u017fcram": "\u017fCRAM", "\u212aerberos": "\u212aERBEROS", "\xff": "\xff",
	} {
		got := sasl.MechanismName(in)
		if got != want {
			t.Errorf("MechanismName(%q) = %q, want %q", in, got, want)
		}
		if in != "plain" && in != "xOAuth2" && sasl.Supported(got, true) {
			t.Errorf("Supported(MechanismName(%q)) = true", in)
		}
	}
}

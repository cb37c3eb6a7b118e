package wire

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestResponseAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Response
		want string
	}{
		{"ok", Response{Type: "OK"}, "OK\r\n"},
		{"ok text", Response{Type: "OK", Text: "Logged in."}, "OK \"Logged in.\"\r\n"},
		{"no trylater", Response{Type: "NO", Code: "TRYLATER", Text: "Backend unavailable"}, "NO (TRYLATER) \"Backend unavailable\"\r\n"},
		{"bye", Response{Type: "BYE", Text: "Too many errors"}, "BYE \"Too many errors\"\r\n"},
		{"sasl code", Response{Type: "OK", Code: "SASL", CodeArgs: []Value{quoted("cnNwYXV0aD0=")}}, "OK (SASL \"cnNwYXV0aD0=\")\r\n"},
		{"quota", Response{Type: "NO", Code: "QUOTA/MAXSIZE", Text: "x"}, "NO (QUOTA/MAXSIZE) \"x\"\r\n"},
		{"bad code left out", Response{Type: "NO", Code: "A B", Text: "x"}, "NO \"x\"\r\n"},
		{"escapes", Response{Type: "NO", Text: `a"b\c`}, "NO \"a\\\"b\\\\c\"\r\n"},
		{"literal text", Response{Type: "NO", Text: "a\r\nb"}, "NO {4}\r\na\r\nb\r\n"},
		{"challenge", Response{Data: []Value{quoted("cmVhbG09")}}, "\"cmVhbG09\"\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.r.Append(nil)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := AppendClientString(nil, strings.Repeat("x", 1025)); !strings.HasPrefix(string(got), "{1025+}\r\nxx") {
		t.Errorf("client literal %.20q", got)
	}
	if got := AppendString(nil, strings.Repeat(`"`, 513)); !strings.HasPrefix(string(got), "{513}\r\n") {
		t.Errorf("513 quotes, 1026 octets once escaped: %.20q", got)
	}
	if got := AppendString(nil, strings.Repeat(`"`, 512)); !strings.HasPrefix(string(got), `"\"`) {
		t.Errorf("512 quotes, 1024 octets once escaped: %.20q", got)
	}
	if got := AppendString(nil, "\xff"); string(got) != "{1}\r\n\xff" {
		t.Errorf("8-bit non-UTF-8 string %q", got)
	}
}

// dovecotGreeting is Dovecot's Pigeonhole greeting, as in RFC 5804
// section 1.7's example.
const dovecotGreeting = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n" +
	"\"SIEVE\" \"fileinto reject envelope encoded-character vacation subaddress\"\r\n" +
	"\"NOTIFY\" \"mailto\"\r\n" +
	"\"SASL\" \"PLAIN LOGIN\"\r\n" +
	"\"STARTTLS\"\r\n" +
	"\"VERSION\" \"1.0\"\r\n" +
	"OK \"Dovecot ready.\"\r\n"

func TestReadCapabilities(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader(dovecotGreeting+"\"sasl\" {5}\r\nPLAIN\r\nno (trylater) \"later\"\r\n"), 16)
	caps, resp, err := ReadCapabilities(br, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Type != "OK" || resp.Text != "Dovecot ready." || len(caps) != 6 {
		t.Fatalf("got %+v %+v", caps, resp)
	}
	if v, _ := caps.Value("sasl"); v != "PLAIN LOGIN" || !caps.Has("STARTTLS") || caps.Has("MAXREDIRECTS") {
		t.Errorf("caps %+v", caps)
	}
	if got := string((&Response{Type: "OK", Text: "Dovecot ready."}).Append(caps.Append(nil))); got != dovecotGreeting {
		t.Errorf("written back as %q", got)
	}
	caps, resp, err = ReadCapabilities(br, 0, 0)
	if err != nil || resp.Type != "NO" || resp.Code != "TRYLATER" || resp.Text != "later" || len(caps) != 1 || caps[0].Value != "PLAIN" {
		t.Errorf("got %+v %+v %v", caps, resp, err)
	}
}

func TestReadResponse(t *testing.T) {
	in := "\"cmVhbG09\"\r\n" +
		"{8}\r\ncmVhbG09\r\n" +
		"OK (SASL \"cnNwYXV0aD0=\")\r\n" +
		"NO (QUOTA/MAXSIZE) \"Too big\"\r\n" +
		"BYE (REFERRAL sieve://other.example.org) \"Go away\"\r\n" +
		"NO (X-EXT 1 (\"a\" b)) {3}\r\nabc\r\n" +
		"OK\r\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	check := func(want Response) {
		t.Helper()
		got, err := ReadResponse(br, 0)
		if err != nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("got %+v %v, want %+v", got, err, want)
		}
	}
	check(Response{Data: []Value{quoted("cmVhbG09")}})
	check(Response{Data: []Value{lit("cmVhbG09")}})
	check(Response{Type: "OK", Code: "SASL", CodeArgs: []Value{quoted("cnNwYXV0aD0=")}})
	check(Response{Type: "NO", Code: "QUOTA/MAXSIZE", CodeArgs: []Value{}, Text: "Too big"})
	check(Response{Type: "BYE", Code: "REFERRAL", CodeArgs: []Value{atom("sieve://other.example.org")}, Text: "Go away"})
	check(Response{Type: "NO", Code: "X-EXT", CodeArgs: []Value{atom("1"), {Kind: KindList, List: []Value{quoted("a"), atom("b")}}}, Text: "abc"})
	check(Response{Type: "OK"})
	if d, ok := (&Response{Type: "OK", Code: "SASL", CodeArgs: []Value{quoted("x")}}).SASLData(); !ok || d != "x" {
		t.Error("SASLData")
	}
	if c, ok := (&Response{Data: []Value{quoted("x")}}).Challenge(); !ok || c != "x" {
		t.Error("Challenge")
	}
}

func TestReadResponseErrors(t *testing.T) {
	for _, in := range []string{
		"* OK imap\r\n",
		"MAYBE \"x\"\r\n",
		"OK \"a\" \"b\"\r\n",
		"OK ()\r\n",
		"OK (SASL\r\n",
		"\"a\" b\r\n",
		"\r\n",
		"OK \"" + strings.Repeat("x", 200) + "\"\r\n",
		"OK {300}\r\n",
	} {
		_, err := ReadResponse(bufio.NewReader(strings.NewReader(in)), 100)
		if !errors.Is(err, ErrResponse) {
			t.Errorf("%.20q: got %v, want ErrResponse", in, err)
		}
	}
	_, _, err := ReadCapabilities(bufio.NewReader(strings.NewReader("\"A\"\r\n\"B\"\r\n\"C\"\r\nOK\r\n")), 0, 2)
	if !errors.Is(err, ErrResponse) {
		t.Errorf("3 capabilities with limit 2: %v", err)
	}
}

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
		{"ok", Response{Status: StatusOK, Text: "Dovecot ready."}, "+OK Dovecot ready.\r\n"},
		{"ok no text", Response{Status: StatusOK}, "+OK\r\n"},
		{"err with code", Response{Status: StatusErr, Code: CodeAuth, Text: "Authentication failed."}, "-ERR [AUTH] Authentication failed.\r\n"},
		{"sys/temp", Response{Status: StatusErr, Code: CodeSysTemp, Text: "Try later"}, "-ERR [SYS/TEMP] Try later\r\n"},
		{"in-use", Response{Status: StatusErr, Code: CodeInUse, Text: "Locked"}, "-ERR [IN-USE] Locked\r\n"},
		{"login-delay", Response{Status: StatusErr, Code: CodeLoginDelay, Text: "Wait"}, "-ERR [LOGIN-DELAY] Wait\r\n"},
		{"bad code left out", Response{Status: StatusErr, Code: "A]B", Text: "x"}, "-ERR x\r\n"},
		{"injection", Response{Status: StatusErr, Text: "x\r\n+OK y"}, "-ERR x  +OK y\r\n"},
		{"continuation", Response{Status: StatusContinue, Text: "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"}, "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"},
		{"empty continuation", Response{Status: StatusContinue}, "+ \r\n"},
		{"multi-line", Response{Status: StatusOK, Text: "Capability list follows", Lines: []string{"USER", ".hidden", "SASL PLAIN LOGIN"}},
			"+OK Capability list follows\r\nUSER\r\n..hidden\r\nSASL PLAIN LOGIN\r\n.\r\n"},
		{"empty multi-line", Response{Status: StatusOK, Lines: []string{}}, "+OK\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.r.Append(nil)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadResponse(t *testing.T) {
	in := "+OK Dovecot ready. <1.2@host>\r\n" +
		"-ERR [SYS/TEMP] Temporary failure\r\n" +
		"-ERR [AUTH] Authentication failed.\r\n" +
		"-err [in-use] locked\r\n" +
		"-ERR [broken code\r\n" +
		"+ \r\n" +
		"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n" +
		"+OK\r\n"
	want := []Response{
		{Status: StatusOK, Text: "Dovecot ready. <1.2@host>"},
		{Status: StatusErr, Code: "SYS/TEMP", Text: "Temporary failure"},
		{Status: StatusErr, Code: "AUTH", Text: "Authentication failed."},
		{Status: StatusErr, Code: "IN-USE", Text: "locked"},
		{Status: StatusErr, Text: "[broken code"},
		{Status: StatusContinue},
		{Status: StatusContinue, Text: "eyJzdGF0dXMiOiI0MDEifQ=="},
		{Status: StatusOK},
	}
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	for i, w := range want {
		got, err := ReadResponse(br, 0)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("response %d: got %+v, want %+v", i, *got, w)
		}
	}
}

func TestReadResponseErrors(t *testing.T) {
	for _, in := range []string{
		"* OK imap\r\n",
		"+OKfoo\r\n",
		"\r\n",
		"+OK " + strings.Repeat("x", 510) + "\r\n",
	} {
		_, err := ReadResponse(bufio.NewReader(strings.NewReader(in)), 0)
		if !errors.Is(err, ErrResponse) {
			t.Errorf("%.20q: got %v, want ErrResponse", in, err)
		}
	}
}

func TestReadMultiLine(t *testing.T) {
	in := "+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n" +
		"SASL PLAIN login\r\nSTLS\r\nUSER\r\n..x\r\n.\r\n" +
		"-ERR no\r\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	r, err := ReadMultiLine(br, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	caps := ParseCapa(r.Lines)
	if !caps.Has("stls") || !caps.Has("RESP-CODES") || caps.Has("IMPLEMENTATION") {
		t.Errorf("caps %+v", caps)
	}
	if args, _ := caps.Args("SASL"); !reflect.DeepEqual(args, []string{"PLAIN", "login"}) {
		t.Errorf("SASL %q", args)
	}
	if last := r.Lines[len(r.Lines)-1]; last != ".x" {
		t.Errorf("dot-stuffed line read as %q", last)
	}
	if got := (&Response{Status: StatusOK, Text: "Capability list follows", Lines: caps.Lines()}).Append(nil); !strings.HasPrefix(in, string(got[:len(got)-len("..x\r\n.\r\n")])) {
		t.Errorf("written back as %q", got)
	}
	r, err = ReadMultiLine(br, 0, 0)
	if err != nil || r.Status != StatusErr || r.Lines != nil {
		t.Errorf("-ERR read as %+v %v", r, err)
	}
	_, err = ReadMultiLine(bufio.NewReader(strings.NewReader("+OK\r\na\r\nb\r\nc\r\n.\r\n")), 0, 2)
	if !errors.Is(err, ErrResponse) {
		t.Errorf("3 lines with limit 2: %v", err)
	}
	_, err = ReadMultiLine(bufio.NewReader(strings.NewReader("+OK\r\na\r\n")), 0, 0)
	if err == nil {
		t.Error("unterminated body accepted")
	}
}

package wire

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReplyAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Reply
		want string
	}{
		{"greeting", Reply{Code: 220, Lines: []string{"mx.example.org ESMTP ready"}}, "220 mx.example.org ESMTP ready\r\n"},
		{"enhanced", Reply{Code: 535, Enhanced: "5.7.8", Lines: []string{"Authentication credentials invalid"}}, "535 5.7.8 Authentication credentials invalid\r\n"},
		{"multi-line", Reply{Code: 250, Lines: []string{"mx.example.org", "PIPELINING", "AUTH PLAIN LOGIN"}}, "250-mx.example.org\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"},
		{"multi-line enhanced", Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"a", "b"}}, "550-5.1.1 a\r\n550 5.1.1 b\r\n"},
		{"no text", Reply{Code: 250}, "250\r\n"},
		{"enhanced only", Reply{Code: 250, Enhanced: "2.0.0"}, "250 2.0.0\r\n"},
		{"continuation", Reply{Code: 334, Lines: []string{"VXNlcm5hbWU6"}}, "334 VXNlcm5hbWU6\r\n"},
		{"empty continuation", Reply{Code: 334, Lines: []string{""}}, "334 \r\n"},
		{"injection", Reply{Code: 421, Lines: []string{"x\r\n250 y"}}, "421 x  250 y\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.Append(nil)
			if err != nil || string(got) != tc.want {
				t.Errorf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []Reply{{Code: 199}, {Code: 600}, {Code: 535, Enhanced: "4.7.8"}, {Code: 250, Enhanced: "2.0"}, {Code: 250, Enhanced: "2.0.1234"}, {Code: 250, Enhanced: "2.x.0"}} {
		if _, err := bad.Append(nil); !errors.Is(err, ErrReply) {
			t.Errorf("%+v: got %v, want ErrReply", bad, err)
		}
	}
}

func TestReadReply(t *testing.T) {
	in := "220 mx.example.org ESMTP Postfix\r\n" +
		"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n" +
		"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-XCLIENT NAME ADDR PROTO HELO\r\n250 STARTTLS\r\n" +
		"535 5.7.8 Error: authentication failed: bad\r\n" +
		"334 \r\n" +
		"250\r\n" +
		"451-4.3.0 first\r\n451-4.3.0\r\n451 other\r\n"
	want := []Reply{
		{Code: 220, Lines: []string{"mx.example.org ESMTP Postfix"}},
		{Code: 250, Lines: []string{"mx.example.org", "PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "XCLIENT NAME ADDR PROTO HELO", "STARTTLS"}},
		{Code: 535, Enhanced: "5.7.8", Lines: []string{"Error: authentication failed: bad"}},
		{Code: 334, Lines: []string{""}},
		{Code: 250, Lines: []string{""}},
		{Code: 451, Enhanced: "4.3.0", Lines: []string{"first", "", "other"}},
	}
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	for i, w := range want {
		got, err := ReadReply(br, 0, 0)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("reply %d: got %+v, want %+v", i, *got, w)
		}
		if i == 1 {
			exts := got.Extensions()
			if !exts.Has("starttls") || !exts.Has("8BITMIME") || exts.Has("AUTH=PLAIN") || len(exts) != 7 {
				t.Errorf("extensions %+v", exts)
			}
			if p, _ := exts.Params("AUTH"); !reflect.DeepEqual(p, []string{"PLAIN", "LOGIN"}) {
				t.Errorf("AUTH %q", p)
			}
			again, _ := exts.EHLOReply("mx.example.org").Append(nil)
			if !strings.Contains(string(again), "250-AUTH PLAIN LOGIN\r\n") || !strings.HasSuffix(string(again), "250 STARTTLS\r\n") {
				t.Errorf("EHLO reply written as %q", again)
			}
		}
	}
}

func TestReadReplyErrors(t *testing.T) {
	for _, in := range []string{
		"250-a\r\n251 b\r\n",
		"600 x\r\n",
		"260 x\r\n",
		"25\r\n",
		"250x\r\n",
		"+OK pop\r\n",
		"250 " + strings.Repeat("x", 510) + "\r\n",
		"250-a\r\n250-b\r\n250 c\r\n", // over maxLines 2
	} {
		_, err := ReadReply(bufio.NewReader(strings.NewReader(in)), 0, 2)
		if !errors.Is(err, ErrReply) {
			t.Errorf("%.20q: got %v, want ErrReply", in, err)
		}
	}
	if _, err := ReadReply(bufio.NewReader(strings.NewReader("250-a\r\n")), 0, 0); err == nil {
		t.Error("unterminated reply accepted")
	}
}

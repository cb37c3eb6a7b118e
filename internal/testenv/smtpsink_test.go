package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/smtp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// TestSMTPSink sends a message with net/smtp, finds it with WaitMessage,
// and checks that Close ends an idle open session and may be repeated.
func TestSMTPSink(t *testing.T) {
	s, err := testenv.NewSMTPSink()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Await(ctx, nil); !errors.Is(err, testenv.ErrNoMessage) {
		t.Fatalf("Await on an empty sink: %v", err)
	}
	body := "Subject: sink\r\n\r\nhello\r\n"
	if err := smtp.SendMail(s.Addr, nil, "a@a.test", []string{"b@b.test", "c@c.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessage(t, func(m testenv.SinkMessage) bool { return m.From == "a@a.test" })
	if string(m.Data) != body || strings.Join(m.To, ",") != "b@b.test,c@c.test" || m.Helo != "localhost" || !strings.HasPrefix(m.RemoteAddr, "127.0.0.1:") {
		t.Errorf("received %+v", m)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}

	c, r := dialLines(t, "127.0.0.1", s.Addr)
	expectPrefix(t, r, "220 ")
	fmt.Fprint(c, "EHLO idle.test\r\n")
	smtpReply(t, r, "250")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Error("an open session survived Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

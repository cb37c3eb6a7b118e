package tests

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestAuthenticateContinuation: AUTHENTICATE PLAIN without an initial
// response waits for "+ ", "*" cancels it, and a second one succeeds.
func TestAuthenticateContinuation(t *testing.T) {
	e := newEnv(t, envOptions{})
	rc := e.rawTLS(t, "127.0.0.2")
	rc.send("a AUTHENTICATE PLAIN\r\n")
	rc.expect("+")
	rc.send("*\r\n")
	if l := rc.expect("a "); !strings.HasPrefix(l, "a BAD") && !strings.HasPrefix(l, "a NO") {
		t.Fatalf("cancelled AUTHENTICATE: %s", l)
	}
	rc.send("b AUTHENTICATE PLAIN\r\n")
	rc.expect("+")
	rc.send("%s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00bob@b.test\x00bob-secret")))
	if l := rc.expect("b "); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("AUTHENTICATE PLAIN after a continuation: %s", l)
	}
	rc.send("c SELECT INBOX\r\n")
	rc.expect(fmt.Sprintf("* %d EXISTS", messageCount["bob@b.test"]))
}

// TestIdleAndLargeAppend: through pipegate, a 10 MiB APPEND on one
// session reaches another session waiting in IDLE, and the message comes
// back whole.
func TestIdleAndLargeAppend(t *testing.T) {
	e := newEnv(t, envOptions{})
	exists := make(chan uint32, 16)
	idler := imapclient.New(newTLSClientConn(t, e), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	defer idler.Close()
	account := "carol@a.test"
	if err := idler.Login(account, password(account)).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}

	writer := imapclient.New(newTLSClientConn(t, e), nil)
	defer writer.Close()
	if err := writer.Login(account, password(account)).Wait(); err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	msg.WriteString("From: a@a.test\r\nTo: carol@a.test\r\nSubject: big\r\n\r\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n" // 66 bytes
	for msg.Len() < 10<<20 {
		msg.WriteString(line)
	}
	cmd := writer.Append("INBOX", int64(msg.Len()), nil)
	if _, err := cmd.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND of %d bytes: %v", msg.Len(), err)
	}

	want := uint32(messageCount[account] + 1)
	deadline := time.After(ioTimeout)
	for got := uint32(0); got != want; {
		select {
		case got = <-exists:
		case <-deadline:
			t.Fatalf("the IDLE session saw no EXISTS %d", want)
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := idler.Fetch(imapv2.SeqSetNum(want), &imapv2.FetchOptions{BodySection: []*imapv2.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	var body []byte
	for _, b := range msgs[0].BodySection {
		body = b.Bytes
	}
	if !bytes.Equal(body, msg.Bytes()) {
		t.Fatalf("fetched %d bytes, appended %d; equal: false", len(body), msg.Len())
	}
}

package sieve_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/sieve"
)

// FuzzLoginIdentity: whatever a client sends before login, the name the
// backend is asked to log in is byte for byte an account the gateway
// decided and routed, and no routed account holds NUL, CR or LF (issue
// 17). The input goes through the whole proxy (the real parser, SASL
// decoding, account rules, backend login) to a fake backend that decodes
// what it gets as a backend would.
func FuzzLoginIdentity(f *testing.F) {
	plainIR := func(s string) string { return `AUTHENTICATE "PLAIN" "` + b64(s) + "\"\r\n" }
	f.Add(plainIR("\x00alice@a.test\x00secret"))
	f.Add(plainIR("\x00bob@a.test\x00alice@a.test\x00secret"))
	f.Add(plainIR("alice@a.test\x00alice@a.test\x00secret"))
	f.Add(plainIR("\x00ALICE@a.test\x00secret"))
	f.Add(fmt.Sprintf("AUTHENTICATE \"PLAIN\" {%d+}\r\n%s\r\n", len(b64("\x00alice@a.test\x00secret")), b64("\x00alice@a.test\x00secret")))
	f.Add("AUTHENTICATE \"PLAIN\"\r\n\"" + b64("\x00carol@a.test\r\n\x00pw") + "\"\r\n")
	f.Add("AUTHENTICATE \"LOGIN\" \"" + b64("bob@a.test\x00alice@a.test") + "\"\r\n\"" + b64("secret") + "\"\r\n")
	f.Add("AUTHENTICATE \"LOGIN\"\r\n{16+}\r\n" + b64("dave@a.test") + "\r\n\"" + b64("x") + "\"\r\n")
	f.Add(`AUTHENTICATE "XOAUTH2" "` + b64("user=alice@a.test\x01auth=Bearer good\x01\x01") + "\"\r\n")
	f.Add(`AUTHENTICATE "OAUTHBEARER" "` + b64("n,a=b=2Cob@a.test,\x01auth=Bearer t\x01\x01") + "\"\r\n\"\"\r\n")

	fb, err := newFakeBackend()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(fb.Close)
	r := newRouter(f, "sieve://"+fb.Addr())
	addr := startProxy(f, &sieve.Server{Server: gateway.Server{
		Router: r, AllowPlaintextAuth: true, OAuth: true, MaxLoginFailures: 100,
		Accounts: gateway.AccountRules{Format: gateway.FormatLowercase},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)), // f.Log may not be called during the fuzz target
	}})
	f.Fuzz(func(t *testing.T, input string) {
		before := len(fb.loginNames())
		for len(r.accounts) > 0 {
			<-r.accounts
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, input)
		c.(*net.TCPConn).CloseWrite() // the proxy (or, once piped, the backend) sees EOF and ends
		if _, err := io.Copy(io.Discard, c); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("reading to the end: %v", err)
		}
		var routed []string
		for len(r.accounts) > 0 {
			acc := <-r.accounts
			if strings.ContainsAny(acc, "\x00\r\n") {
				t.Fatalf("routed %q (from %q)", acc, input)
			}
			routed = append(routed, acc)
		}
		// The fake records a login before it answers it, and the proxy
		// closes only after the answer: every name is in.
		for _, name := range fb.loginNames()[before:] {
			if !slices.Contains(routed, name) {
				t.Fatalf("backend asked to log in %q, routed %q (from %q)", name, routed, input)
			}
		}
	})
}

package submission_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/submission"
)

// fakeBackend answers each connection with script, which reads lines
// with next and writes with send; the lines it read are kept.
type fakeBackend struct {
	addr string
	mu   sync.Mutex
	got  []string
}

func startFake(t *testing.T, script func(next func() string, send func(string))) *fakeBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{addr: l.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go fb.accept(t, l, &wg, script)
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return fb
}

func (fb *fakeBackend) accept(t *testing.T, l net.Listener, wg *sync.WaitGroup, script func(func() string, func(string))) {
	defer wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go fb.serve(c, wg, script)
	}
}

func (fb *fakeBackend) serve(c net.Conn, wg *sync.WaitGroup, script func(func() string, func(string))) {
	defer wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	next := func() string {
		l, err := br.ReadString('\n')
		if err != nil {
			return ""
		}
		l = strings.TrimRight(l, "\r\n")
		fb.mu.Lock()
		fb.got = append(fb.got, l)
		fb.mu.Unlock()
		return l
	}
	send := func(s string) { _, _ = io.WriteString(c, s) }
	script(next, send)
	next() // until the client closes
}

func (fb *fakeBackend) lines() []string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]string(nil), fb.got...)
}

// TestXCLIENTAndOAuthRelay: towards a Dovecot-like backend the proxy says
// EHLO as itself, sends XCLIENT with the client's address and EHLO name,
// says EHLO again in the client's name after the new 220, and passes an
// XOAUTH2 message rebuilt around the decided name; the backend's error
// challenge is relayed to the client and its answer back.
func TestXCLIENTAndOAuthRelay(t *testing.T) {
	const token = "dXNlcj1hbGljZUBhLnRlc3QBYXV0aD1CZWFyZXIgdG9rAQE=" // user=alice@a.test^Aauth=Bearer tok^A^A
	fb := startFake(t, func(next func() string, send func(string)) {
		send("220 fake ESMTP\r\n")
		ehlo := "250-fake\r\n250-XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD\r\n250 AUTH PLAIN XOAUTH2\r\n"
		next() // EHLO gw.test
		send(ehlo)
		next() // XCLIENT
		send("220 fake ESMTP\r\n")
		next() // EHLO client.test
		send(ehlo)
		if next() != "AUTH XOAUTH2 "+token {
			send("501 5.5.2 unexpected\r\n")
			return
		}
		send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n")
		if next() != "" {
			send("501 5.5.2 unexpected\r\n")
			return
		}
		send("535 5.7.8 Invalid token\r\n")
	})
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true, OAuth: true}})
	c := dialRaw(t, "127.0.0.7", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER")
	c.cmd("AUTH XOAUTH2 "+token, "334 eyJzdGF0dXMiOiI0MDEifQ==")
	c.cmd("", "535 5.7.8 Authentication credentials invalid")
	got := fb.lines()
	if len(got) < 4 || got[0] != "EHLO gw.test" || got[2] != "EHLO client.test" ||
		!strings.HasPrefix(got[1], "XCLIENT ADDR=127.0.0.7 PORT=") ||
		!strings.Contains(got[1], " HELO=client.test PROTO=ESMTP SESSION=") || !strings.HasSuffix(got[1], " TTL=4") {
		t.Errorf("backend got %q", got)
	}
}

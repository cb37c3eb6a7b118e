package imap_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/imap/wire"
)

// fakeBackend is a scripted IMAP server for what go-imap's server does not
// do (ID, LITERAL+, XOAUTH2, PROXY headers): each connection runs script.
type fakeBackend struct {
	addr string
}

type fakeConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
	rd *wire.Reader
}

func startFake(t testing.TB, script func(fc *fakeConn)) *fakeBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				fc := &fakeConn{t: t, c: c, br: bufio.NewReader(c)}
				fc.rd = wire.NewReader(fc.br)
				fc.rd.Continue = func(int64) error { fc.send("+ go ahead\r\n"); return nil }
				script(fc)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &fakeBackend{addr: l.Addr().String()}
}

func (fc *fakeConn) send(s string) {
	_, _ = io.WriteString(fc.c, s)
}

// cmd reads a command; nil at EOF or on error (reported unless EOF).
func (fc *fakeConn) cmd() *wire.Command {
	c, err := fc.rd.ReadCommand()
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			fc.t.Errorf("fake backend: %v", err)
		}
		return nil
	}
	return c
}

// answerIDThenLogin is a Dovecot-like backend's dialogue after its
// greeting: ID gets an empty answer, LOGIN gets loginReply after its tag and
// the session is then served as logged in (serveAfterLogin); anything else
// gets BAD and ends the connection. Each command goes to got first, when got
// is not nil.
func (fc *fakeConn) answerIDThenLogin(got seen, loginReply string) {
	for {
		c := fc.cmd()
		if c == nil {
			return
		}
		if got != nil {
			got <- c
		}
		switch c.Name {
		case "ID":
			fc.send("* ID NIL\r\n" + c.Tag + " OK ID done\r\n")
		case "LOGIN":
			fc.send(c.Tag + loginReply)
			fc.serveAfterLogin()
			return
		default:
			fc.send(c.Tag + " BAD unexpected\r\n")
			return
		}
	}
}

// serveAfterLogin answers NOOP and LOGOUT like a logged-in server would.
func (fc *fakeConn) serveAfterLogin() {
	for {
		c := fc.cmd()
		if c == nil {
			return
		}
		switch c.Name {
		case "LOGOUT":
			fc.send("* BYE bye\r\n" + c.Tag + " OK LOGOUT done\r\n")
			return
		default:
			fc.send(c.Tag + " OK " + c.Name + " done by fake\r\n")
		}
	}
}

package pop3_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeOpts script a fake POP3 backend.
type fakeOpts struct {
	greeting string   // "" : "+OK fake ready"
	caps     []string // CAPA lines before login; nil: CAPA is unknown (-ERR)
	users    map[string]string
	// loginAnswer, when set, answers every login (PASS, AUTH) instead
	// of checking the password.
	loginAnswer string
	tls         *tls.Config // STLS offered with it
	afterSTLS   string      // sent right after STLS's +OK (plaintext injection)
	oauthError  string      // XOAUTH2: the base64 challenge sent before refusing
	// xclientAnswer answers XCLIENT; "": "+OK Updated".
	xclientAnswer string
}

// fakeBackend is a scripted POP3 server on loopback; it records the
// commands it received before login, per connection.
type fakeBackend struct {
	addr string
	opts fakeOpts

	mu       sync.Mutex
	sessions [][]string
}

func startFake(t testing.TB, o fakeOpts) *fakeBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{addr: l.Addr().String(), opts: o}
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
			go f.serveFake(c, &wg)
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
	return f
}

// commands returns what connection i received before login.
func (f *fakeBackend) commands(i int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.sessions) {
		return nil
	}
	return append([]string(nil), f.sessions[i]...)
}

// serveFake is the goroutine of one fake backend connection.
func (f *fakeBackend) serveFake(c net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	f.mu.Lock()
	f.sessions = append(f.sessions, nil)
	idx := len(f.sessions) - 1
	f.mu.Unlock()
	record := func(l string) {
		f.mu.Lock()
		f.sessions[idx] = append(f.sessions[idx], l)
		f.mu.Unlock()
	}
	o := f.opts
	var conn net.Conn = c
	br := bufio.NewReader(conn)
	say := func(s string) { _, _ = io.WriteString(conn, s) }
	greeting := o.greeting
	if greeting == "" {
		greeting = "+OK fake ready"
	}
	say(greeting + "\r\n")
	user, loggedIn := "", false
	login := func(name, pass string) {
		switch {
		case o.loginAnswer != "":
			say(o.loginAnswer + "\r\n")
			loggedIn = strings.HasPrefix(o.loginAnswer, "+OK")
		case o.users[name] == pass && pass != "":
			say("+OK Logged in.\r\n")
			loggedIn = true
		default:
			say("-ERR [AUTH] Authentication failed.\r\n")
		}
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		l = strings.TrimRight(l, "\r\n")
		if !loggedIn {
			record(l)
		}
		cmd, arg, _ := strings.Cut(l, " ")
		switch cmd = strings.ToUpper(cmd); {
		case loggedIn && cmd == "STAT":
			say("+OK 2 320\r\n")
		case loggedIn && cmd == "CAPA":
			say("+OK\r\nTOP\r\nUIDL\r\nBACKEND-AFTER-LOGIN\r\n.\r\n")
		case cmd == "QUIT":
			say("+OK bye\r\n")
			return
		case loggedIn:
			say("+OK backend\r\n")
		case cmd == "CAPA" && o.caps != nil:
			say("+OK\r\n" + strings.Join(o.caps, "\r\n") + "\r\n.\r\n")
		case cmd == "STLS" && o.tls != nil:
			say("+OK Begin TLS\r\n" + o.afterSTLS)
			tc := tls.Server(c, o.tls)
			if tc.Handshake() != nil {
				return
			}
			conn, br = tc, bufio.NewReader(tc)
		case cmd == "XCLIENT" && o.xclientAnswer != "":
			say(o.xclientAnswer + "\r\n")
		case cmd == "XCLIENT":
			say("+OK Updated\r\n")
		case cmd == "USER":
			user = arg
			say("+OK\r\n")
		case cmd == "PASS":
			login(user, arg)
		case cmd == "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			if ir == "" {
				say("+ \r\n")
				if ir, err = br.ReadString('\n'); err != nil {
					return
				}
				ir = strings.TrimRight(ir, "\r\n")
				record(ir)
			}
			msg, _ := base64.StdEncoding.DecodeString(ir)
			switch mech {
			case "PLAIN":
				parts := strings.Split(string(msg), "\x00")
				if len(parts) != 3 {
					say("-ERR bad PLAIN\r\n")
					continue
				}
				login(parts[1], parts[2])
			case "XOAUTH2":
				say("+ " + o.oauthError + "\r\n")
				answer, err := br.ReadString('\n')
				if err != nil {
					return
				}
				record(strings.TrimRight(answer, "\r\n"))
				say("-ERR [AUTH] Invalid token\r\n")
			default:
				say("-ERR unknown mechanism\r\n")
			}
		default:
			say("-ERR unknown command\r\n")
		}
	}
}

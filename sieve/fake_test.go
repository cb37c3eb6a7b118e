package sieve_test

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"sync"

	"github.com/pipegate/pipegate/sieve/wire"
)

// fakeBackend is a small ManageSieve server on loopback: it offers
// XCLIENT, takes AUTHENTICATE "PLAIN" for alice@a.test with the password
// "secret" and then answers CAPABILITY and NOOP as a logged-in server
// would. It records the XCLIENT lines it got.
type fakeBackend struct {
	l  net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	xclient []string
	names   []string // the user of every AUTHENTICATE, as the backend decodes it
}

func newFakeBackend() (*fakeBackend, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeBackend{l: l, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go acceptFake(f)
	return f, nil
}

func (f *fakeBackend) Addr() string { return f.l.Addr().String() }

// Close stops the server and waits for its goroutines.
func (f *fakeBackend) Close() {
	f.l.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeBackend) loginNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names...)
}

// loginName is the user a backend logs in from a PLAIN or XOAUTH2 message:
// the authorization identity if any, else the authenticating one.
func loginName(mech string, msg []byte) string {
	if mech == "XOAUTH2" {
		for _, f := range strings.Split(string(msg), "\x01") {
			if v, ok := strings.CutPrefix(f, "user="); ok {
				return v
			}
		}
		return ""
	}
	authz, rest, _ := strings.Cut(string(msg), "\x00")
	authc, _, _ := strings.Cut(rest, "\x00")
	if authz != "" {
		return authz
	}
	return authc
}

func (f *fakeBackend) xclients() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.xclient...)
}

func acceptFake(f *fakeBackend) {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Add(1)
		go serveFake(f, c)
	}
}

func serveFake(f *fakeBackend, c net.Conn) {
	defer f.wg.Done()
	defer func() {
		c.Close()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
	}()
	rd := wire.NewReader(bufio.NewReader(c))
	w := func(s string) bool {
		_, err := c.Write([]byte(s))
		return err == nil
	}
	if !w("\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN XOAUTH2\"\r\n\"XCLIENT\"\r\n\"VERSION\" \"1.0\"\r\nOK \"fake ready\"\r\n") {
		return
	}
	loggedIn := false
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			return
		}
		switch {
		case cmd.Name == "XCLIENT" && !loggedIn:
			var args []string
			for _, a := range cmd.Args {
				args = append(args, a.Str)
			}
			f.mu.Lock()
			f.xclient = append(f.xclient, strings.Join(args, " "))
			f.mu.Unlock()
			w("OK \"Updated\"\r\n")
		case cmd.Name == "AUTHENTICATE" && !loggedIn:
			args, _ := cmd.Strings(2, 2)
			var msg []byte
			if len(args) == 2 {
				msg, _ = base64.StdEncoding.DecodeString(args[1])
			}
			if len(args) == 2 {
				f.mu.Lock()
				f.names = append(f.names, loginName(args[0], msg))
				f.mu.Unlock()
			}
			if len(args) == 2 && args[0] == "XOAUTH2" {
				if string(msg) == "user=alice@a.test\x01auth=Bearer good\x01\x01" {
					loggedIn = true
					w("OK \"Logged in.\"\r\n")
					continue
				}
				// Google's way: the error as a challenge, answered by an
				// empty response, then NO.
				w("\"" + base64.StdEncoding.EncodeToString([]byte(`{"status":"401"}`)) + "\"\r\n")
				if v, err := rd.ReadString(); err != nil || v.Str != "" {
					w("NO \"fake: want an empty answer\"\r\n")
					continue
				}
				w("NO \"Authentication failed.\"\r\n")
				continue
			}
			if string(msg) == "\x00alice@a.test\x00secret" {
				loggedIn = true
				w("OK \"Logged in.\"\r\n")
			} else {
				w("NO \"Authentication failed.\"\r\n")
			}
		case cmd.Name == "CAPABILITY" && loggedIn:
			w("\"IMPLEMENTATION\" \"fake\"\r\n\"SIEVE\" \"fileinto\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Capability completed.\"\r\n")
		case cmd.Name == "NOOP" && loggedIn:
			w("OK \"NOOP from the backend\"\r\n")
		case cmd.Name == "LOGOUT":
			w("OK \"Logout completed.\"\r\n")
			return
		default:
			w("NO \"fake: unexpected command\"\r\n")
		}
	}
}

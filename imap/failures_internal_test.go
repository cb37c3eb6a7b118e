package imap

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
)

// refusingBackend answers every LOGIN with NO, as a backend does for a
// wrong password.
func refusingBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go refuseLogins(&wg, c)
		}
	}()
	return l.Addr().String()
}

func refuseLogins(wg *sync.WaitGroup, c net.Conn) {
	defer wg.Done()
	defer c.Close()
	c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"))
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		tag, _, _ := strings.Cut(sc.Text(), " ")
		c.Write([]byte(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"))
	}
}

// TestFailuresUniform: a wrong password, an account without route, a
// domain no route serves, a route source's refusal, a refused name and an
// unusable SASL message all take one path: one penalty count for the
// client's address, the same delay floor counted from the command, the
// same counter. What is checked is that path (the waits the code asks
// for), not the clock.
func TestFailuresUniform(t *testing.T) {
	backend, err := route.ParseBackend("imap://" + refusingBackend(t) + "?id=0")
	if err != nil {
		t.Fatal(err)
	}
	var looked []string
	var mu sync.Mutex
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		mu.Lock()
		looked = append(looked, req.Account)
		mu.Unlock()
		switch {
		case req.Account == "nobody@a.test", strings.HasSuffix(req.Account, "@nowhere.test"):
			return route.Route{}, route.ErrNotFound
		case req.Account == "blocked@a.test":
			return route.Route{}, &route.Denied{Text: "Authentication failed."}
		}
		return route.Route{Backends: []route.Backend{backend}}, nil
	})
	store := limit.NewMemoryStore(0)
	type wait struct {
		kind string
		d    time.Duration
	}
	var waits []wait
	const floor = 2 * time.Second
	srv := &Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			MaxLoginFailures:   100,
			FailureDelay:       floor,
			Penalty:            &limit.Penalty{Store: store, Base: time.Nanosecond, Max: time.Nanosecond},
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
			FailureSleep: func(_ context.Context, d time.Duration) bool {
				// Record instead of waiting: the test checks the schedule.
				mu.Lock()
				defer mu.Unlock()
				waits = append(waits, wait{"", d})
				return true
			},
		},
	}
	var kinds []string
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l, false) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	readLine := func() string {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimRight(s, "\r\n")
	}
	readLine() // greeting
	plain := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		kind, send, want string
		routed           bool
	}{
		{gateway.FailPassword, `a LOGIN alice@a.test wrong`, "a NO [AUTHENTICATIONFAILED] Authentication failed.", true},
		{gateway.FailNoRoute, `a LOGIN nobody@a.test wrong`, "a NO [AUTHENTICATIONFAILED] Authentication failed.", true},
		{gateway.FailNoRoute, `a LOGIN x@nowhere.test wrong`, "a NO [AUTHENTICATIONFAILED] Authentication failed.", true},
		{gateway.FailDenied, `a LOGIN blocked@a.test wrong`, "a NO [AUTHENTICATIONFAILED] Authentication failed.", true},
		{gateway.FailName, "a LOGIN {19+}\r\nalice@a.test\x00x.test wrong", "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name", false},
		{gateway.FailName, `a LOGIN "al ice@a.test" wrong`, "a NO [AUTHENTICATIONFAILED] Invalid characters in the user name", false},
		{gateway.FailName, "a AUTHENTICATE PLAIN " + plain("\x00alice@a.test\x00wr\nong"), "a NO [AUTHENTICATIONFAILED] Invalid characters in the password", false},
		{gateway.FailSASL, "a AUTHENTICATE PLAIN " + plain("alice@a.test\x00x\x00y\x00z"), "a NO [AUTHENTICATIONFAILED] Invalid PLAIN message", false},
	}
	ip := netip.MustParseAddr("127.0.0.1")
	for i, tc := range cases {
		mu.Lock()
		nLooked := len(looked)
		mu.Unlock()
		if _, err := c.Write([]byte(tc.send + "\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := readLine(); got != tc.want {
			t.Errorf("%s: %q: got %q, want %q", tc.kind, tc.send, got, tc.want)
		}
		mu.Lock()
		if len(waits) != i+1 {
			t.Fatalf("%s: %d waits after %d failures", tc.kind, len(waits), i+1)
		}
		w := waits[i].d
		if routed := len(looked) > nLooked; routed != tc.routed {
			t.Errorf("%s: routed %v, want %v", tc.kind, routed, tc.routed)
		}
		mu.Unlock()
		if w <= 0 || w > floor {
			t.Errorf("%s: answer held %v, want in (0, %v]: the floor counted from the command", tc.kind, w, floor)
		}
		t.Logf("%s: held %v", tc.kind, w)
		n, err := store.Failures(context.Background(), "ip:"+limit.Key(ip).String())
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(i+1) {
			t.Errorf("%s: penalty count %d after %d failures", tc.kind, n, i+1)
		}
		kinds = append(kinds, tc.kind)
	}
	t.Logf("kinds checked: %v", kinds)
}

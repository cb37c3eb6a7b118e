package gatewaytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// TurnSep separates the turns of a backend fuzz input (BackendInput):
// a byte no mail protocol needs (it is not UTF-8).
const TurnSep = '\xff'

// maxTurns bounds the turns of an input; further separators are bytes
// of the last turn.
const maxTurns = 12

// quiet is how long the fake backend waits for the gateway's next line
// before it sends its next turn anyway (a backend that speaks out of
// turn): an input whose turn leaves the gateway waiting costs this, not
// the login timeout. It paces the fake; no assertion depends on it.
const quiet = 50 * time.Millisecond

// BackendInput joins turns into a backend fuzz input (a seed).
func BackendInput(turns ...string) []byte {
	return []byte(strings.Join(turns, string([]byte{TurnSep})))
}

// FuzzBackend is the backend of a fuzz target for the backend's side of
// the gateway's login dialogue: on loopback for the whole target, it
// serves each connection from the input given to Next: turn 0 (the
// greeting) at once, turn k after it read the gateway's k-th line (or
// after quiet), then it half-closes and reads until the gateway closes.
//
//	fb := gatewaytest.StartFuzzBackend(f)
//	f.Fuzz(func(t *testing.T, in []byte) {
//		d := fb.Next(in)
//		... // the client logs in through the gateway, routed to fb.Addr
//		d.Wait(t)
//	})
type FuzzBackend struct {
	Addr string
	mu   sync.Mutex
	next *Dialogue
}

// Dialogue is one connection of a FuzzBackend: what the gateway sent
// and what the backend answered, once Wait returned.
type Dialogue struct {
	turns     [][]byte
	Exchanges []Exchange
	done      chan struct{}
}

// Exchange is one step of a Dialogue: the gateway's line the backend
// read ("" for the greeting, or when the gateway stayed quiet), then
// what the backend sent.
type Exchange struct {
	Got  string
	Sent []byte
}

// StartFuzzBackend listens on loopback; the listener is closed and its
// connections waited for when the test ends.
func StartFuzzBackend(t testing.TB) *FuzzBackend {
	t.Helper()
	l := Listen(t)
	b := &FuzzBackend{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go b.accept(l, &wg)
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return b
}

// Next makes in (turns joined by TurnSep) the script of the next
// connection and returns its Dialogue.
func (b *FuzzBackend) Next(in []byte) *Dialogue {
	d := &Dialogue{turns: bytes.SplitN(in, []byte{TurnSep}, maxTurns), done: make(chan struct{})}
	b.mu.Lock()
	b.next = d
	b.mu.Unlock()
	return d
}

// accept is FuzzBackend's accepting goroutine.
func (b *FuzzBackend) accept(l net.Listener, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		d := b.next
		b.next = nil // a second connection gets no script
		b.mu.Unlock()
		if d == nil {
			d = &Dialogue{done: make(chan struct{})}
		}
		wg.Add(1)
		go d.serve(c, wg)
	}
}

// serve is the goroutine of one connection.
func (d *Dialogue) serve(c net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	defer close(d.done)
	defer c.Close()
	end := time.Now().Add(15 * time.Second) // past the client's 10 s
	_ = c.SetWriteDeadline(end)
	br := bufio.NewReader(c)
	for k, turn := range d.turns {
		got := ""
		if k > 0 {
			_ = c.SetReadDeadline(time.Now().Add(quiet))
			var err error
			if got, err = readTurn(br); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break // the gateway closed
			}
		}
		d.Exchanges = append(d.Exchanges, Exchange{Got: got, Sent: turn})
		if _, err := c.Write(turn); err != nil {
			break
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(end)
	for {
		got, err := readTurn(br)
		if got != "" {
			d.Exchanges = append(d.Exchanges, Exchange{Got: got})
		}
		if err != nil {
			return
		}
	}
}

// readTurn reads the gateway's next line, or a TLS record (its
// ClientHello after STARTTLS, which ends in no line feed).
func readTurn(br *bufio.Reader) (string, error) {
	if h, err := br.Peek(5); err == nil && h[0] == 0x16 && h[1] == 3 {
		rec := make([]byte, 5+int(h[3])<<8|int(h[4]))
		n, err := io.ReadFull(br, rec)
		return string(rec[:n]), err
	}
	return br.ReadString('\n')
}

// Wait waits until the connection ended, or fails t after 10 s (the
// gateway did not connect, or holds the connection).
func (d *Dialogue) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the backend's connection did not end (or none came); script %q", d.turns)
	}
}

// Got returns the first line the gateway sent that is matched, or "".
func (d *Dialogue) Got(match func(line string) bool) string {
	for _, e := range d.Exchanges {
		if e.Got != "" && match(e.Got) {
			return e.Got
		}
	}
	return ""
}

// Sent counts the lines the backend sent, in any turn, that match.
// Lines are cut at LF, without their CR. A turn sent out of turn may be
// read as the answer to any later command: the count is of the whole
// script sent.
func (d *Dialogue) Sent(match func(line string) bool) int {
	n := 0
	for _, e := range d.Exchanges {
		for _, l := range bytes.Split(e.Sent, []byte("\n")) {
			if match(string(bytes.TrimSuffix(l, []byte("\r")))) {
				n++
			}
		}
	}
	return n
}

// HasPrefixFold reports whether s starts with prefix, case-blind.
func HasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Leaked returns an error naming the first line the gateway sent to the
// backend that holds one of secrets (the client's password, its SASL
// message): for a route whose backend must be on TLS first.
func (d *Dialogue) Leaked(secrets ...string) error {
	for _, e := range d.Exchanges {
		for _, s := range secrets {
			if e.Got != "" && strings.Contains(e.Got, s) {
				return fmt.Errorf("credentials sent to a backend without TLS: %q", e.Got)
			}
		}
	}
	return nil
}

// Answer is the kind of a login's answer to the client.
type Answer int

const (
	AnswerOther       Answer = iota // none of the below: not an answer
	AnswerOK                        // the protocol's success
	AnswerUnavailable               // the gateway's own "unavailable"
	AnswerRefused                   // another refusal: the backend's, relayed or rendered
)

// CheckAnswer checks a login's answer to the client, of kind, against
// what the backend said: a success only when the backend sent one
// (backendOK), and then counted (loggedIn); a refusal other than the
// gateway's own "unavailable" only when the backend refused
// (backendRefused); through a route on STARTTLS (starttls), whose fake
// backend cannot do TLS, nothing but "unavailable".
func CheckAnswer(answer string, kind Answer, loggedIn, starttls, backendOK, backendRefused bool) error {
	switch {
	case kind == AnswerOK && !loggedIn:
		return fmt.Errorf("success, but no login counted: %q", answer)
	case kind == AnswerOK && starttls:
		return fmt.Errorf("logged in through a backend that cannot do TLS: %q", answer)
	case kind == AnswerOK && !backendOK:
		return fmt.Errorf("success, but the backend sent none: %q", answer)
	case kind != AnswerOK && loggedIn:
		return fmt.Errorf("a login counted, answered %q", answer)
	case kind == AnswerOther:
		return fmt.Errorf("not an answer to the login: %q", answer)
	case kind == AnswerRefused && (starttls || !backendRefused):
		return fmt.Errorf("a refusal the backend did not send: %q", answer)
	}
	return nil
}

// Router routes "@a.test" to the fake backend on a plain link
// (scheme://Addr) and "@s.test" to it on STARTTLS (scheme+starttls://),
// with each protocol's default client_addr.
func (b *FuzzBackend) Router(t testing.TB, scheme string) route.Router {
	t.Helper()
	plain, err := route.ParseBackend(scheme + "://" + b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	starttls, err := route.ParseBackend(scheme + "+starttls://" + b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		switch {
		case strings.HasSuffix(req.Account, "@a.test"):
			return route.Route{Backends: []route.Backend{plain}}, nil
		case strings.HasSuffix(req.Account, "@s.test"):
			return route.Route{Backends: []route.Backend{starttls}}, nil
		}
		return route.Route{}, route.ErrNotFound
	})
}

// FuzzRoute is one of the two routes of Router, and the account a client
// logs in as to take it.
type FuzzRoute struct {
	User     string // alice@a.test, alice@s.test
	StartTLS bool
}

// FuzzRoutes are Router's two routes.
var FuzzRoutes = []FuzzRoute{{User: "alice@a.test"}, {User: "alice@s.test", StartTLS: true}}

// BackendFuzz is the fixture of a protocol's backend fuzz target
// (FuzzBackendLogin): the fake backend, and the gateway's metrics
// registry and log.
//
//	bf := gatewaytest.NewBackendFuzz(f, "pop3")
//	p := startProxy(f, &pop3.Server{Server: bf.Server(pop3.NewMetrics(bf.Reg))})
//	f.Fuzz(func(t *testing.T, in []byte) { bf.Run(t, in, dial, login, check) })
type BackendFuzz struct {
	*FuzzBackend
	Reg      *prometheus.Registry
	Logs     *PanicLog
	protocol string
}

// NewBackendFuzz starts the fake backend of protocol's target.
func NewBackendFuzz(f *testing.F, protocol string) *BackendFuzz {
	return &BackendFuzz{FuzzBackend: StartFuzzBackend(f), Reg: prometheus.NewRegistry(), Logs: &PanicLog{}, protocol: protocol}
}

// Server is FuzzServer routed by Router (no TLS for clients), counting
// in metrics (the protocol's, registered in Reg).
func (b *BackendFuzz) Server(t testing.TB, metrics *gateway.Metrics) gateway.Server {
	return FuzzServer(b.Router(t, b.protocol), nil, metrics, b.Logs)
}

// Run runs one input of a backend fuzz target through each of
// FuzzRoutes: the backend's script is in; dial connects a client to the
// gateway and reads its greeting (a reader of what follows it); login is
// what the client sends as user before it half-closes (FuzzSession: no
// panic, the connection closes after the client's EOF); check judges
// the client's output once the backend's connection ended.
func (b *BackendFuzz) Run(t *testing.T, in []byte, dial func() (net.Conn, io.Reader), login func(user string) string,
	check func(out []byte, loggedIn bool, r FuzzRoute, d *Dialogue) error) {
	t.Helper()
	for _, r := range FuzzRoutes {
		d := b.Next(in)
		c, rd := dial()
		FuzzSession(t, b.Reg, "pipegate_"+b.protocol+"_logins_total", b.Logs, c, rd, []byte(login(r.User)), func(out []byte, loggedIn bool) error {
			d.Wait(t)
			if err := check(out, loggedIn, r, d); err != nil {
				return fmt.Errorf("%v (route %+v)\nbackend's dialogue: %q", err, r, d.Exchanges)
			}
			return nil
		})
	}
}

package gatewaytest

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ScriptedBackend accepts one connection on loopback and runs script on
// it (a backend that breaks the login dialogue, say); what the backend
// reads after the script is sent to got, line by line, until the
// connection ends. It returns the address; the listener is closed and
// the goroutine waited for when the test ends.
func ScriptedBackend(t testing.TB, got chan<- string, script func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go serveScript(l, got, script, &wg)
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// serveScript is the goroutine of ScriptedBackend.
func serveScript(l net.Listener, got chan<- string, script func(net.Conn, *bufio.Reader), wg *sync.WaitGroup) {
	defer wg.Done()
	c, err := l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	// Past a client's usual 20 s: a proxy that waits on the backend fails
	// the test at the client's deadline, not released by this one.
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	script(c, br)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		got <- line
	}
}

// Counted is the sum of counter name over the series whose label has
// value (pipegate_pop3_logins_total{result="unavailable"}, say).
func Counted(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// Converse is a scripted backend's turn-taking (ScriptedBackend): for
// each reply, it writes the reply, then reads the peer's next line.
// Errors are ignored: the script ends when the connection does.
func Converse(c net.Conn, br *bufio.Reader, replies ...string) {
	for _, r := range replies {
		_, _ = io.WriteString(c, r)
		_, _ = br.ReadString('\n')
	}
}

package submission_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/submission"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STARTTLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, users, nil, false)
	reg := prometheus.NewRegistry()
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + be.addr + "?client_addr=none"}}),
		TLSConfig:          pki.server,
		AllowPlaintextAuth: true,
		Metrics:            submission.NewMetrics(reg),
	}})
	ehlo := func(c *rawClient) {
		c.send("EHLO client.test\r\n")
		c.reply()
	}
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.0.0 Authentication succeeded")
			c.send("NOOP\r\n")
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
		},
		func(t *testing.T) { // refused
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "wrong"), "535 5.7.8 Authentication credentials invalid")
			c.cmd("QUIT", "221 2.0.0 Bye")
		},
		func(t *testing.T) { // vanished after EHLO
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.conn.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTH
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN", "334 ")
			c.conn.Close()
		},
		func(t *testing.T) { // STARTTLS, then a login that pipes; the client goes without QUIT
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.send("STARTTLS\r\n")
			c.reply()
			c.startTLS(pki.client)
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.0.0 Authentication succeeded")
			c.send("NOOP\r\n")
			c.reply()
			c.conn.Close()
		},
		func(t *testing.T) { // vanished during the STARTTLS handshake
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.send("STARTTLS\r\n")
			c.reply()
			c.conn.Close()
		},
	}
	base := openFDs(t)
	var wg sync.WaitGroup
	for round := range 4 {
		for i, k := range kinds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(fmt.Sprintf("round%d/kind%d", round, i), k)
			}()
		}
	}
	wg.Wait()
	waitFDs(t, base, func() float64 { return gauge(t, reg, "pipegate_submission_sessions_active") })
}

// gauge reads the value of a gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// openFDs is this process's open descriptors and what each is.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fds := map[string]string{}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			fds[e.Name()] = l
		} // else the directory being read, closed by now
	}
	return fds
}

// maxPooledPipeFDs: package pipe keeps up to 16 empty kernel pipes (two
// descriptors each) for splice, process-wide, for reuse; its own tests
// empty that pool before counting (pipe/internal/sock.DrainPipes, out of
// reach from here), these allow for it.
const maxPooledPipeFDs = 2 * 16

// waitFDs polls, within a bound, until the gateway counts no session
// (active) and no descriptor is open that was not open at base, but for
// pipe's pooled pipes: the sessions' last closes (the backend's side of a
// pipe, say) run on other goroutines after the client saw its connection
// end.
func waitFDs(t *testing.T, base map[string]string, active func() float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var extra []string
		pipes := 0
		for fd, l := range openFDs(t) {
			switch {
			case base[fd] == l:
			case strings.HasPrefix(l, "pipe:") && pipes < maxPooledPipeFDs:
				pipes++
			default:
				extra = append(extra, fd+"->"+l)
			}
		}
		a := active()
		if a == 0 && len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v sessions active; descriptors open that were not before: %s", a, strings.Join(extra, " "))
		}
		<-time.After(5 * time.Millisecond) // a bounded poll, not a synchronisation
	}
}

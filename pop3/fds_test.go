package pop3_test

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
	"github.com/pipegate/pipegate/pop3"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	reg := prometheus.NewRegistry()
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}}),
		TLSConfig:          pki.server,
		AllowPlaintextAuth: true,
		Metrics:            pop3.NewMetrics(reg),
	}})
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.cmd("PASS pw")
			if l := c.cmd("STAT"); l != "+OK 2 320" {
				t.Errorf("STAT through the pipe: %q", l)
			}
			c.cmd("QUIT")
		},
		func(t *testing.T) { // refused
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.cmd("PASS wrong")
			c.cmd("QUIT")
		},
		func(t *testing.T) { // vanished after USER
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.conn.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTH
			c := dial(t, "", p.addr)
			c.cmd("AUTH PLAIN")
			c.conn.Close()
		},
		func(t *testing.T) { // STLS, then a login that pipes; the client goes without QUIT
			c := dial(t, "", p.addr)
			c.cmd("STLS")
			c.startTLS(pki.client)
			c.cmd("USER alice@a.test")
			c.cmd("PASS pw")
			c.cmd("STAT")
			c.conn.Close()
		},
		func(t *testing.T) { // vanished during the STLS handshake
			c := dial(t, "", p.addr)
			c.cmd("STLS")
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
	waitFDs(t, base, func() float64 { return gauge(t, reg, "pipegate_pop3_sessions_active") })
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

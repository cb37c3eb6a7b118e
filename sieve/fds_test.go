package sieve_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/sieve"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STARTTLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	reg := prometheus.NewRegistry()
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) {
		s.TLSConfig = pki.server
		s.Metrics = sieve.NewMetrics(reg)
	})
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c, _ := dial(t, "", addr)
			c.send(authPlain + "NOOP\r\nLOGOUT\r\n")
			c.response("OK")
			c.response("OK")
			c.response("OK")
		},
		func(t *testing.T) { // refused
			c, _ := dial(t, "", addr)
			c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\nLOGOUT\r\n")
			c.response("NO")
			c.response("OK")
		},
		func(t *testing.T) { // vanished after a command
			c, _ := dial(t, "", addr)
			c.send("NOOP\r\n")
			c.response("OK")
			c.c.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTHENTICATE
			c, _ := dial(t, "", addr)
			c.send("AUTHENTICATE \"PLAIN\"\r\n")
			c.line()
			c.c.Close()
		},
		func(t *testing.T) { // STARTTLS, then a login that pipes; the client goes without LOGOUT
			c, _ := dial(t, "", addr)
			c.send("STARTTLS\r\n")
			c.response("OK")
			c.startTLS(pki.client)
			c.response("OK") // the capabilities again
			c.send(authPlain + "NOOP\r\n")
			c.response("OK")
			c.response("OK")
			c.c.Close()
		},
		func(t *testing.T) { // vanished during the STARTTLS handshake
			c, _ := dial(t, "", addr)
			c.send("STARTTLS\r\n")
			c.response("OK")
			c.c.Close()
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
	waitFDs(t, base, func() float64 { return gauge(t, reg, "pipegate_sieve_sessions_active") })
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

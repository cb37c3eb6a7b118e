package maild

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/route"
)

// tlsGreeter is an implicit-TLS IMAP backend that greets and closes.
func tlsGreeter(t *testing.T, cert tls.Certificate) (addr string, stop func()) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go greetLoop(l, &wg)
	return l.Addr().String(), func() { l.Close(); wg.Wait() }
}

func greetLoop(l net.Listener, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "* OK ready\r\n")
		buf := make([]byte, 512)
		c.Read(buf) // LOGOUT, or the end
		c.Close()
	}
}

// TestProberBackendTLSAfterReload: SIGHUP reloads backend_tls (a rotated
// backend CA) for the pools' health checks too, which probe through a
// server newProber made when Run started: else logins would verify the
// new certificates while every probe failed and took the members down.
func TestProberBackendTLSAfterReload(t *testing.T) {
	newCA := tlstest.NewCA(t)
	backend, stop := tlsGreeter(t, newCA.IssueCert(t, "127.0.0.1"))
	defer stop()

	path := configtest.WriteConfig(t, fmt.Sprintf("listen:\n  - addr: %s\nroutes_file: routes.yaml\nbackend_tls:\n  ca: rotating-ca.crt\n", testenv.FreeAddr(t)))
	rot := filepath.Join(filepath.Dir(path), "rotating-ca.crt")
	configtest.CopyFile(t, filepath.Join(filepath.Dir(path), "ca.crt"), rot) // the old CA
	d, _ := newTestDaemon(t, path, CommandIMAP)
	defer d.Close()

	prober := d.newProber("imap") // what pools.run does once, as Run starts

	configtest.CopyFile(t, newCA.CertFile(t), rot) // the backends' CA rotated
	if err := d.Reload(); err != nil {             // SIGHUP
		t.Fatal(err)
	}
	b, err := route.ParseBackend("imaps://" + backend)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.servers[0].Probe(ctx, b, "", ""); err != nil {
		t.Fatalf("the serving server, after the reload: %v", err)
	}
	if err := prober.Probe(ctx, b, "", ""); err != nil {
		t.Fatalf("the health-check prober still uses the backend TLS from before the reload: %v", err)
	}
}

// TestPoolMemberServerName: backend_tls.server_name is "the name to
// verify backends' certificates against, when the route does not give
// ?server_name=" (docs/imap.md), for a routed backend and for the same
// backend as a pool member (its logins through Assign, its health probes).
func TestPoolMemberServerName(t *testing.T) {
	ca := tlstest.NewCA(t)
	backend, stop := tlsGreeter(t, ca.IssueCert(t, "backend.test")) // a certificate for the name only
	defer stop()
	path := configtest.WriteConfig(t, fmt.Sprintf(`listen:
  - addr: %s
routes_file: direct.yaml
backend_tls:
  ca: other-ca.crt
  server_name: backend.test
pools:
  p:
    members: [imaps://%s]
    affinity:
      redis: {url: "redis://127.0.0.1:1/0"}
`, testenv.FreeAddr(t), backend))
	dir := filepath.Dir(path)
	configtest.CopyFile(t, ca.CertFile(t), filepath.Join(dir, "other-ca.crt"))
	writeTestFile(t, filepath.Join(dir, "direct.yaml"), "default: imaps://"+backend+"\n")
	d, _ := newTestDaemon(t, path, CommandIMAP)
	defer d.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := d.res.router.Lookup(ctx, route.Request{Protocol: "imap", Account: "someone@x.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.servers[0].Probe(ctx, rt.Backends[0], "", ""); err != nil {
		t.Fatalf("routed backend: %v", err)
	}
	member := d.pools.byName["p"].members[backend].Backends["imap"] // what Assign and the health checks use
	if err := d.newProber("imap").Probe(ctx, member, "", ""); err != nil {
		t.Fatalf("the same backend as a pool member ignores backend_tls.server_name (ServerName %q): %v", member.ServerName, err)
	}
}

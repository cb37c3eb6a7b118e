package tests

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/internal/testenv"
)

// TestRouteByLocalAddress: one pipegate mail listening on one port of
// 127.0.0.1 and 127.0.0.2, a routes file sending every account of each
// address to its tenant's backend (local:), and the same account and
// password on both backends: a real IMAP login through each address
// reaches its tenant's backend, told apart by a mailbox only that one
// has. Behind a trusted load balancer, the PROXY header's destination
// is the address routed by.
func TestRouteByLocalAddress(t *testing.T) {
	backendA, backendB := startTenantBackend(t, "Tenant-A"), startTenantBackend(t, "Tenant-B")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "routes.yaml"), fmt.Sprintf(`routes:
  - local: 127.0.0.1
    backend: imap://%s
  - local: 127.0.0.2
    backend: imap://%s
`, backendA, backendB))
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	addrA, addrB := net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("127.0.0.2", port)
	balanced := testenv.FreeAddr(t) // on 127.0.0.1, behind a load balancer
	startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
    protocol: imap
  - addr: %s
    protocol: imap
  - addr: %s
    protocol: imap
    accept_proxy: true
    trusted_proxies: [127.0.0.1/32]
routes_file: routes.yaml
allow_plaintext_auth: true
drain_timeout: 5s
`, addrA, addrB, balanced), []string{guessPass}, addrA, addrB, balanced)

	for _, tc := range []struct{ name, addr, proxyTo, want, notWant string }{
		{"127.0.0.1", addrA, "", "Tenant-A", "Tenant-B"},
		{"127.0.0.2", addrB, "", "Tenant-B", "Tenant-A"},
		{"PROXY to 127.0.0.2", balanced, "127.0.0.2", "Tenant-B", "Tenant-A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", tc.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if tc.proxyTo != "" {
				if _, err := fmt.Fprintf(conn, "PROXY TCP4 192.0.2.7 %s 40000 %s\r\n", tc.proxyTo, port); err != nil {
					t.Fatal(err)
				}
			}
			mailboxes := loginAndList(t, conn, guessUser, guessPass)
			if !mailboxes[tc.want] || mailboxes[tc.notWant] {
				t.Errorf("through %s: mailboxes %v, want %s's backend (%s, not %s)", tc.name, mailboxes, tc.want, tc.want, tc.notWant)
			}
		})
	}
}

// loginAndList logs in on conn with go-imap and returns the mailboxes
// it lists.
func loginAndList(t *testing.T, conn net.Conn, account, pass string) map[string]bool {
	t.Helper()
	addr := conn.RemoteAddr()
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(account, pass).Wait(); err != nil {
		t.Fatalf("login through %s: %v", addr, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("list through %s: %v", addr, err)
	}
	names := map[string]bool{}
	for _, m := range list {
		names[m.Mailbox] = true
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("logout through %s: %v", addr, err)
	}
	return names
}

// startTenantBackend starts an in-memory backend (startMemBackend) and
// creates mailbox on it for guessUser, logged in directly, so that a
// client can tell which backend it reached.
func startTenantBackend(t *testing.T, mailbox string) string {
	t.Helper()
	addr := startMemBackend(t)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(guessUser, guessPass).Wait(); err != nil {
		t.Fatalf("backend %s: login: %v", addr, err)
	}
	if err := c.Create(mailbox, nil).Wait(); err != nil {
		t.Fatalf("backend %s: create %s: %v", addr, mailbox, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("backend %s: logout: %v", addr, err)
	}
	return addr
}

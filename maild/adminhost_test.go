package maild

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
)

// TestSessionsDNSRebinding (from an audit): a page on
// rebind.attacker.example whose name was rebound to the admin address
// (127.0.0.1:9143) is same-origin for the browser, so
// http.CrossOriginProtection lets its POST through (Sec-Fetch-Site:
// same-origin), and its GET /sessions would be readable by the page. The
// session API answers only requests whose Host is an IP address or
// localhost.
func TestSessionsDNSRebinding(t *testing.T) {
	f := &fakeSessions{list: []gateway.SessionInfo{{ID: "1", Protocol: "imap", Account: "alice@a.test", Client: "192.0.2.7:5555"}}}
	h := newSessionsHandler([]sessionServer{f}, slog.New(slog.DiscardHandler), "")

	get := httptest.NewRequest("GET", "http://rebind.attacker.example:9143/sessions", nil)
	get.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	if rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), "alice@a.test") {
		t.Errorf("GET /sessions with Host rebind.attacker.example: %d, the list (accounts, client addresses) is readable by the rebinding page", rec.Code)
	}

	post := httptest.NewRequest("POST", "http://rebind.attacker.example:9143/sessions/kick", strings.NewReader("account=alice%40a.test"))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", "http://rebind.attacker.example:9143")
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, post)
	if len(f.kicked) > 0 {
		t.Errorf("POST /sessions/kick with Host rebind.attacker.example: %d, kicked %q", rec.Code, f.kicked)
	}
}

// TestAdminHost: the Hosts the guarded admin APIs answer; the daemon's
// affinity API is guarded too (it moves users), /metrics and /healthz
// are not (a scraper may name the host).
func TestAdminHost(t *testing.T) {
	for host, want := range map[string]bool{
		"": true, "127.0.0.1:9143": true, "127.0.0.1": true, "[::1]:9143": true, "[::1]": true,
		"localhost:9143": true, "LOCALHOST": true, "10.0.0.5:9143": true,
		"rebind.attacker.example:9143": false, "mail1.internal:9143": false, "localhost.attacker.example": false,
	} {
		if got := adminHost(host); got != want {
			t.Errorf("adminHost(%q) = %v, want %v", host, got, want)
		}
	}
	path := configtest.WriteConfig(t, fmt.Sprintf("listen:\n  - addr: %s\nroutes_file: routes.yaml\n", testenv.FreeAddr(t)))
	d, _ := newTestDaemon(t, path, CommandMail)
	defer d.Close()
	h := d.adminHandler()
	for path, want := range map[string]int{"/affinity/pools": http.StatusForbidden, "/sessions": http.StatusForbidden, "/healthz": http.StatusOK} {
		r := httptest.NewRequest("GET", "http://rebind.attacker.example:9143"+path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("GET %s with a rebound Host: %d, want %d", path, rec.Code, want)
		}
	}
}

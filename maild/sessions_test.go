package maild

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
)

// fakeSessions is a server's sessions, kicked by account.
type fakeSessions struct {
	mu     sync.Mutex
	list   []gateway.SessionInfo
	kicked []string // the accounts Kick was called with
}

func (f *fakeSessions) Sessions() []gateway.SessionInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

func (f *fakeSessions) Kick(account string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kicked = append(f.kicked, account)
	n := len(f.list)
	f.list = slices.DeleteFunc(f.list, func(s gateway.SessionInfo) bool { return s.Of(account) })
	return n - len(f.list)
}

// sessionsCall sends one request to h and returns the status, the Allow
// header and the body.
func sessionsCall(t *testing.T, h http.Handler, r *http.Request) (int, http.Header, string) {
	t.Helper()
	if r.Host == "example.com" { // httptest's: ask by address, as ctl does
		r.Host = "127.0.0.1:9143"
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want JSON", r.Method, r.URL, ct)
	}
	return rec.Code, rec.Header(), rec.Body.String()
}

// TestSessionsAPI: GET /sessions merges the servers' sessions in one
// order and filters by account; POST /sessions/kick kicks the account,
// named in the form, the query or JSON, on every server and answers the
// count; a GET to kick is 405, a missing account 400, a browser's
// cross-site POST refused.
func TestSessionsAPI(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	imapSrv := &fakeSessions{list: []gateway.SessionInfo{
		{ID: "i2", Protocol: "imap", Account: "bob@x.test", Client: "127.0.0.1:5002", Backend: "127.0.0.1:143", Since: t0.Add(time.Second)},
		{ID: "i1", Protocol: "imap", Account: "alice@x.test", Client: "127.0.0.1:5001", Backend: "127.0.0.1:143", Since: t0.Add(2 * time.Second)},
	}}
	pop3Srv := &fakeSessions{list: []gateway.SessionInfo{
		{ID: "p1", Protocol: "pop3", Account: "alice@x.test", Client: "127.0.0.1:5003", Backend: "127.0.0.1:110", Since: t0},
		{ID: "p2", Protocol: "pop3", Account: "al", BackendAccount: "alice@x.test", Client: "127.0.0.1:5004", Backend: "127.0.0.1:110", Since: t0},
	}}
	var logs strings.Builder
	h := newSessionsHandler([]sessionServer{imapSrv, pop3Srv}, slog.New(slog.NewTextHandler(&logs, nil)), "mail: ")

	list := func(query string) []gateway.SessionInfo {
		t.Helper()
		code, _, body := sessionsCall(t, h, httptest.NewRequest("GET", "/sessions"+query, nil))
		if code != http.StatusOK {
			t.Fatalf("GET /sessions%s: %d %s", query, code, body)
		}
		var out []gateway.SessionInfo
		if err := json.Unmarshal([]byte(body), &out); err != nil || out == nil {
			t.Fatalf("GET /sessions%s: %q: %v (want a JSON list)", query, body, err)
		}
		return out
	}
	ids := func(ss []gateway.SessionInfo) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return strings.Join(out, " ")
	}
	if got := ids(list("")); got != "p2 p1 i1 i2" {
		t.Errorf("sessions %q, want p2 p1 i1 i2 (by account, then oldest first)", got)
	}
	if got := list(""); !got[1].Since.Equal(t0) || got[1].Protocol != "pop3" || got[1].Client != "127.0.0.1:5003" || got[1].Backend != "127.0.0.1:110" ||
		got[0].BackendAccount != "alice@x.test" || got[1].BackendAccount != "" {
		t.Errorf("sessions %+v: fields lost", got[:2])
	}
	if got := ids(list("?account=alice%40x.test")); got != "p2 p1 i1" {
		t.Errorf("alice's sessions %q, want p2 p1 i1 (p2's backend logged in as alice)", got)
	}
	if got := ids(list("?account=al")); got != "p2" {
		t.Errorf("al's sessions %q, want p2", got)
	}
	if got := list("?account=ALICE%40x.test"); len(got) != 0 {
		t.Errorf("account matched in another case: %+v", got)
	}
	if code, _, body := sessionsCall(t, h, httptest.NewRequest("GET", "/sessions?account=", nil)); code != http.StatusBadRequest || !strings.Contains(body, `"field": "account"`) {
		t.Errorf("GET /sessions?account= : %d %s; want 400 naming the field", code, body)
	}

	kick := func(r *http.Request) KickInfo {
		t.Helper()
		code, _, body := sessionsCall(t, h, r)
		if code != http.StatusOK {
			t.Fatalf("kick: %d %s", code, body)
		}
		var k KickInfo
		if err := json.Unmarshal([]byte(body), &k); err != nil {
			t.Fatalf("kick: %q: %v", body, err)
		}
		return k
	}
	form := httptest.NewRequest("POST", "/sessions/kick", strings.NewReader(url.Values{"account": {"alice@x.test"}}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if k := kick(form); k != (KickInfo{Account: "alice@x.test", Kicked: 3}) {
		t.Errorf("kick alice: %+v, want 3 sessions", k)
	}
	if imapSrv.kicked[0] != "alice@x.test" || pop3Srv.kicked[0] != "alice@x.test" {
		t.Errorf("Kick called with %q and %q", imapSrv.kicked, pop3Srv.kicked)
	}
	if got := ids(list("")); got != "i2" {
		t.Errorf("after the kick: %q, want bob's only", got)
	}
	if !strings.Contains(logs.String(), `msg="mail: admin: sessions kicked" account=alice@x.test sessions=3 by=`) {
		t.Errorf("the kick is not logged:\n%s", logs.String())
	}
	if k := kick(httptest.NewRequest("POST", "/sessions/kick?account=nobody%40x.test", nil)); k != (KickInfo{Account: "nobody@x.test"}) {
		t.Errorf("kick of nobody (query): %+v", k)
	}
	js := httptest.NewRequest("POST", "/sessions/kick", strings.NewReader(`{"account":"bob@x.test"}`))
	js.Header.Set("Content-Type", "application/json")
	if k := kick(js); k != (KickInfo{Account: "bob@x.test", Kicked: 1}) {
		t.Errorf("kick bob (JSON): %+v", k)
	}

	for _, c := range []struct {
		method, path, body, ctype string
		code                      int
		allow, want               string
	}{
		{"GET", "/sessions/kick?account=alice%40x.test", "", "", http.StatusMethodNotAllowed, "POST", "method not allowed"},
		{"POST", "/sessions", "", "", http.StatusMethodNotAllowed, "GET", "method not allowed"},
		{"POST", "/sessions/kick", "", "", http.StatusBadRequest, "", "account is required"},
		{"POST", "/sessions/kick", "account=", "application/x-www-form-urlencoded", http.StatusBadRequest, "", "account is required"},
		{"POST", "/sessions/kick", "account=a&account=b", "application/x-www-form-urlencoded", http.StatusBadRequest, "", "account given 2 times"},
		{"POST", "/sessions/kick", `{"user":"a"}`, "application/json", http.StatusBadRequest, "", "unknown field"},
		{"GET", "/sessions/nope", "", "", http.StatusNotFound, "", "no such path"},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			r.Header.Set("Content-Type", c.ctype)
		}
		code, hdr, body := sessionsCall(t, h, r)
		var e affinity.APIError
		if code != c.code || hdr.Get("Allow") != c.allow || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s %q: %d (Allow %q) %s; want %d (Allow %q) saying %q", c.method, c.path, c.body, code, hdr.Get("Allow"), body, c.code, c.allow, c.want)
		}
	}
	if n := len(imapSrv.kicked); n != 3 {
		t.Errorf("the imap server was kicked %d times, want 3: the refused requests kick nothing", n)
	}

	r := httptest.NewRequest("POST", "http://127.0.0.1:9143/sessions/kick?account=bob%40x.test", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden || len(imapSrv.kicked) != 3 {
		t.Errorf("a browser's cross-site kick: %d, %d kicks; want 403 and none", rec.Code, len(imapSrv.kicked))
	}
}

// TestSessionsAdminAddress: the daemon's admin handler serves the session
// API over every listener's server (each protocol's Server lists and
// kicks), next to /metrics.
func TestSessionsAdminAddress(t *testing.T) {
	for name, p := range testProtocols {
		if srv, _ := p.NewServer(&Settings{}); srv == nil {
			t.Fatalf("%s: no server", name)
		} else if _, ok := srv.(sessionServer); !ok {
			t.Errorf("%s's server %T cannot list and kick its sessions", name, srv)
		}
	}
	path := configtest.WriteConfig(t, fmt.Sprintf("listen:\n  - addr: %s\n  - addr: %s\n    protocol: pop3\nroutes_file: routes.yaml\n", testenv.FreeAddr(t), testenv.FreeAddr(t)))
	d, _ := newTestDaemon(t, path, CommandMail)
	defer d.Close()
	if n := len(d.sessionServers()); n != 2 {
		t.Fatalf("%d servers list sessions, want 2 (one per listener)", n)
	}
	api := httptest.NewServer(d.adminHandler())
	defer api.Close()
	if code, body := get(t, api.URL+"/sessions"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /sessions: %d %q; want 200 []", code, body)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.PostForm(api.URL+"/sessions/kick", url.Values{"account": {"alice@a.test"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"kicked": 0`) {
		t.Errorf("POST /sessions/kick: %d %s", resp.StatusCode, body)
	}
	if code, body := get(t, api.URL+"/sessions/kick"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /sessions/kick: %d %s; want 405", code, body)
	}
	if code, _ := get(t, api.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

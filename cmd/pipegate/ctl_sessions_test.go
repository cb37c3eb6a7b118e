package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
)

// TestCtlSessionsOutput: `pipegate ctl sessions` and `kick` against a
// stand-in of the session API: the request each sends, the table, the
// count, --json, and the errors (usage, an API error, an instance
// without the API).
func TestCtlSessionsOutput(t *testing.T) {
	var got []string // method, path and body of each request
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/sessions" && r.URL.Query().Get("account") == "nobody":
			io.WriteString(w, "[]\n")
		case r.URL.Path == "/sessions":
			io.WriteString(w, `[{"id":"s1","protocol":"imap","account":"alice@a.test","client":"127.0.0.1:5001","backend":"10.0.1.1:143","client_tls":true,"backend_tls":false,"since":"2026-12-06T04:40:02Z"},
				{"id":"s2","protocol":"pop3","account":"bob@a.test","client":"127.0.0.1:5002","backend":"10.0.1.2:110","pool":"shared","client_tls":true,"backend_tls":true}]`)
		case r.URL.Path == "/sessions/kick" && strings.Contains(string(body), "account=refused"):
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"account is required","field":"account"}`)
		case r.URL.Path == "/sessions/kick":
			io.WriteString(w, `{"account":"alice@a.test","kicked":2}`)
		}
	}))
	defer api.Close()
	ctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"ctl", "--admin", api.URL}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := ctl("sessions")
	if code != 0 || errs != "" {
		t.Fatalf("sessions: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(out, "\n")
	for i, want := range []string{
		"ACCOUNT PROTOCOL CLIENT BACKEND TLS SINCE AGE ID",
		"alice@a.test imap 127.0.0.1:5001 10.0.1.1:143 client 2026-12-06T04:40:02Z AGE s1",
		"bob@a.test pop3 127.0.0.1:5002 10.0.1.2:110 (pool shared) both - - s2",
		"2 session(s)",
		"",
	} {
		f := strings.Fields(lines[min(i, len(lines)-1)])
		if i == 1 && len(f) == 8 {
			f[6] = "AGE" // counts from the test's time
		}
		if strings.Join(f, " ") != want || len(lines) != 5 {
			t.Errorf("sessions printed\n%s\nline %d is not %q", out, i, want)
		}
	}
	if col := strings.Index(lines[0], "BACKEND"); strings.Index(lines[1], "10.0.1.1") != col || strings.Index(lines[2], "10.0.1.2") != col {
		t.Errorf("columns not aligned:\n%s", out)
	}
	if code, out, _ := ctl("sessions", "nobody"); code != 0 || out != "no sessions of nobody on this instance\n" {
		t.Errorf("sessions nobody: exit %d, %q", code, out)
	}
	if code, out, _ := ctl("kick", "alice@a.test"); code != 0 || out != "kicked 2 session(s) of alice@a.test\n" {
		t.Errorf("kick: exit %d, %q", code, out)
	}
	if code, out, _ := ctl("--json", "kick", "alice@a.test"); code != 0 || out != `{"account":"alice@a.test","kicked":2}` {
		t.Errorf("--json kick: exit %d, %q", code, out)
	}
	want := []string{
		"GET /sessions ",
		"GET /sessions?account=nobody ",
		"POST /sessions/kick account=alice%40a.test",
		"POST /sessions/kick account=alice%40a.test",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"kick"}, "usage: pipegate ctl kick ACCOUNT"},
		{[]string{"kick", "a", "b"}, "usage: pipegate ctl kick ACCOUNT"},
		{[]string{"kick", ""}, "the account is empty"},
		{[]string{"sessions", "a", "b"}, "usage: pipegate ctl sessions [ACCOUNT]"},
		{[]string{"kick", "refused"}, "account is required (400 Bad Request, field account)"},
	} {
		if code, out, errs := ctl(c.args...); code != 2 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("ctl %q: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errs, c.want)
		}
	}

	old := httptest.NewServer(http.NotFoundHandler()) // an instance without the API
	defer old.Close()
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"ctl", "--admin", old.URL, "sessions"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "404 Not Found") || !strings.Contains(errb.String(), "too old for sessions") {
		t.Errorf("ctl sessions against an instance without the API: exit %d, %q", code, errb.String())
	}
}

// TestPrintSessionsAge: the AGE column counts from Since; the ACCOUNT
// column names the backend's account when a route gave another.
func TestPrintSessionsAge(t *testing.T) {
	since := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	var out strings.Builder
	printSessions(&out, []gateway.SessionInfo{{ID: "x", Protocol: "imap", Account: "a", Since: since}, {ID: "y", Protocol: "imap", Account: "b", BackendAccount: "b@x.test"}}, "", since.Add(90*time.Minute+400*time.Millisecond))
	if !strings.Contains(out.String(), "2026-12-06T04:00:00Z  1h30m0s  x") || !strings.Contains(out.String(), "\nb (backend: b@x.test)  imap") || !strings.HasSuffix(out.String(), "2 session(s)\n") {
		t.Errorf("printed\n%s", out.String())
	}
}

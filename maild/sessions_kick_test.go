package maild

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
)

// TestKickJSONAmbiguous: a form naming the account twice,
// differently, is refused (400); the same ambiguity in JSON is taken
// silently: a repeated key (the last wins), a second JSON value after the
// first (ignored), a body and a query that disagree (the body wins).
func TestKickJSONAmbiguous(t *testing.T) {
	for _, tc := range []struct{ name, query, body string }{
		{"repeated key", "", `{"account": "alice@a.test", "account": "bob@a.test"}`},
		{"second value", "", `{"account": "alice@a.test"} {"account": "bob@a.test"}`},
		{"body and query differ", "?account=bob@a.test", `{"account": "alice@a.test"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSessions{list: []gateway.SessionInfo{{ID: "1", Account: "alice@a.test"}, {ID: "2", Account: "bob@a.test"}}}
			h := newSessionsHandler([]sessionServer{f}, slog.New(slog.DiscardHandler), "")
			r := httptest.NewRequest("POST", "http://127.0.0.1:9143/sessions/kick"+tc.query, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code == http.StatusOK {
				t.Errorf("POST %s: %d %s, kicked %q; want 400 as for a form naming two accounts", tc.body, rec.Code, strings.TrimSpace(rec.Body.String()), f.kicked)
			}
		})
	}
}

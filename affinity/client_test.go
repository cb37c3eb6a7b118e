package affinity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/realserver"
)

// TestClient: the client reads and changes the pool through the real
// Handler, and turns error answers into *StatusError values.
func TestClient(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	s := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, s, nil)
	ctx := context.Background()
	srv := httptest.NewServer(Handler(map[string]*Store{pool: s}))
	t.Cleanup(srv.Close)
	var answers []string
	c := &Client{Base: srv.URL + "/", HTTP: srv.Client(), OnAnswer: func(b []byte) { answers = append(answers, string(b)) }}

	from, la := session(t, s, "alice")
	go endWhenKicked(s, la)

	u, err := c.User(ctx, "", "alice")
	if err != nil || u.Pool != pool || u.User != "alice" || u.Member != from || u.Sessions[s.Instance()] != 1 {
		t.Fatalf("User: %+v, %v", u, err)
	}
	if len(answers) != 1 || !strings.Contains(answers[0], `"member": "`+from+`"`) {
		t.Fatalf("OnAnswer got %q", answers)
	}
	if u, err := c.User(ctx, pool, "nobody"); err != nil || u.Member != "" {
		t.Fatalf("User nobody: %+v, %v", u, err)
	}

	w, err := c.SetWeight(ctx, "", "m2", 0)
	if err != nil || w != (WeightInfo{Pool: pool, Member: "m2", Weight: 0, ConfiguredWeight: 1}) {
		t.Fatalf("SetWeight 0: %+v, %v", w, err)
	}
	ps, err := c.Pools(ctx, pool)
	if err != nil || len(ps) != 1 || ps[0].Pool != pool || len(ps[0].Members) != 3 {
		t.Fatalf("Pools: %+v, %v", ps, err)
	}
	for _, m := range ps[0].Members {
		if (m.Name == "m2") != (m.Weight == 0) || (m.Name == from) != (m.Sessions == 1) {
			t.Fatalf("member %+v (m2 drained, alice on %s)", m, from)
		}
	}
	if w, err := c.SetWeight(ctx, pool, "m2", -1); err != nil || w.Weight != 1 {
		t.Fatalf("SetWeight -1: %+v, %v", w, err)
	}

	to := otherMember(from)
	m, err := c.Move(ctx, "", "alice", to)
	if err != nil || m.User != "alice" || m.From != from || m.To != to || m.Confirmed != 1 || m.TimedOut {
		t.Fatalf("Move: %+v, %v", m, err)
	}
	ev, err := c.Evacuate(ctx, pool, to)
	if err != nil || ev.Member != to || len(ev.Moved) != 1 || ev.Moved[0].User != "alice" || ev.Moved[0].To == to {
		t.Fatalf("Evacuate: %+v, %v", ev, err)
	}

	// Error answers: *StatusError with the status and the field.
	for _, tc := range []struct {
		name  string
		call  func() error
		code  int
		field string
	}{
		{"no user", func() error { _, err := c.User(ctx, "", ""); return err }, 400, "user"},
		{"no pool", func() error { _, err := c.Pools(ctx, "nope"); return err }, 404, "pool"},
		{"no member", func() error { _, err := c.Move(ctx, "", "alice", "m9"); return err }, 404, "to"},
		{"bad weight", func() error { _, err := c.SetWeight(ctx, "", "m1", -2); return err }, 400, "weight"},
		{"evacuate none", func() error { _, err := c.Evacuate(ctx, "", "m9"); return err }, 404, "member"},
	} {
		answers = nil
		err := tc.call()
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code || se.API.Field != tc.field || se.API.Error == "" ||
			se.Status != fmt.Sprintf("%d %s", tc.code, http.StatusText(tc.code)) {
			t.Fatalf("%s: %#v; want %d naming %q", tc.name, err, tc.code, tc.field)
		}
		if want := "field " + tc.field; !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %q without %q", tc.name, err, want)
		}
		if len(answers) != 1 || !strings.Contains(answers[0], `"field": "`+tc.field+`"`) {
			t.Fatalf("%s: OnAnswer got %q", tc.name, answers)
		}
	}

	// Not the API: an answer that is not JSON, nobody listening.
	other := &Client{Base: srv.URL + "/elsewhere", HTTP: srv.Client()}
	if _, err := other.Pools(ctx, ""); err == nil || !strings.Contains(err.Error(), "404 Not Found: 404 page not found") {
		t.Fatalf("not the API: %v", err)
	}
	down := &Client{Base: "http://127.0.0.1:1", HTTP: srv.Client()}
	if _, err := down.User(ctx, "", "alice"); err == nil || !strings.Contains(err.Error(), "admin API at http://127.0.0.1:1") {
		t.Fatalf("nobody listening: %v", err)
	}
}

// TestStatusErrorText: an error answer without the API's error text (a
// proxy's in front, say) still reads as a sentence.
func TestStatusErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  StatusError
		want string
	}{
		{StatusError{Status: "502 Bad Gateway"}, "request refused (502 Bad Gateway)"},
		{StatusError{Status: "400 Bad Request", API: APIError{Error: "weight 1001: want 0 to 1000, or -1", Field: "weight"}}, "weight 1001: want 0 to 1000, or -1 (400 Bad Request, field weight)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

package affinity

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
)

// call runs one request on h and decodes the JSON answer into out (if
// not nil); it returns the status and the body.
func call(t *testing.T, h http.Handler, method, target, body string, out any) (int, string) {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if out != nil && w.Code == http.StatusOK {
		// Fresh values: Unmarshal keeps fields the answer omits.
		switch v := out.(type) {
		case *UserInfo:
			*v = UserInfo{}
		case *MoveInfo:
			*v = MoveInfo{}
		case *WeightInfo:
			*v = WeightInfo{}
		case *EvacuateInfo:
			*v = EvacuateInfo{}
		}
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, target, err, w.Body)
		}
	}
	return w.Code, w.Body.String()
}

// wantError checks an error answer: its status and the field it names.
func wantError(t *testing.T, h http.Handler, method, target, body string, code int, field string) {
	t.Helper()
	got, text := call(t, h, method, target, body, nil)
	var e APIError
	if err := json.Unmarshal([]byte(text), &e); err != nil || got != code || e.Field != field || e.Error == "" {
		t.Fatalf("%s %s %s: %d %s; want %d naming field %q", method, target, body, got, text, code, field)
	}
}

// TestHandler: the admin API looks up users and pools, drains, moves and
// evacuates, and answers bad input with the field, unknown names with
// 404, a move during a move with 409.
func TestHandler(t *testing.T) {
	realserver.Need(t, redisErr)
	pool := testPool(t)
	s := newStore(t, newClient(t, redisSrv.Addr), pool, nil)
	run(t, s, nil)
	ctx := context.Background()
	h := Handler(map[string]*Store{pool: s})

	_, l := assign(t, s, "warm-up")
	s.SessionEnd(ctx, l)
	from, la := session(t, s, "alice")
	go endWhenKicked(s, la)

	var u UserInfo
	if code, body := call(t, h, "GET", "/affinity?user=alice", "", &u); code != 200 ||
		u.Pool != pool || u.Member != from || u.Sessions[s.Instance()] != 1 || u.Moving || u.TTL != "" {
		t.Fatalf("alice: %d %s", code, body)
	}
	if code, body := call(t, h, "GET", "/affinity?pool="+pool+"&user=warm-up", "", &u); code != 200 ||
		u.Member == "" || u.TTL == "" || u.Expires.Before(time.Now()) {
		t.Fatalf("idle user: %d %s", code, body)
	}
	if _, lb, err := s.Assign(ctx, "bob"); err != nil { // bob's login runs
		t.Fatal(err)
	} else {
		if code, body := call(t, h, "GET", "/affinity?user=BoB", "", &u); code != 200 || u.User != "bob" || u.Logins != 1 || len(u.Sessions) != 0 {
			t.Fatalf("bob logging in: %d %s", code, body)
		}
		s.SessionEnd(ctx, lb)
	}
	if code, body := call(t, h, "GET", "/affinity?user=nobody", "", &u); code != 200 || u.Member != "" {
		t.Fatalf("unassigned user: %d %s", code, body)
	}

	var w WeightInfo
	if code, body := call(t, h, "POST", "/affinity/weight", `{"member":"m2","weight":0}`, &w); code != 200 ||
		w.Weight != 0 || w.ConfiguredWeight != 1 || w.Pool != pool {
		t.Fatalf("drain: %d %s", code, body)
	}
	var pools []PoolInfo
	if code, body := call(t, h, "GET", "/affinity/pools", "", &pools); code != 200 || len(pools) != 1 || len(pools[0].Members) != 3 {
		t.Fatalf("pools: %d %s", code, body)
	}
	for _, m := range pools[0].Members {
		wantW, wantS := 1, 0
		if m.Name == "m2" {
			wantW = 0
		}
		if m.Name == from {
			wantS = 1
		}
		if m.Weight != wantW || m.ConfiguredWeight != 1 || !m.Up || m.Sessions != wantS || m.Users != wantS {
			t.Fatalf("member %+v; want weight %d, %d sessions", m, wantW, wantS)
		}
	}
	if code, body := call(t, h, "POST", "/affinity/weight", `{"pool":"`+pool+`","member":"m2","weight":-1}`, &w); code != 200 || w.Weight != 1 {
		t.Fatalf("restore weight: %d %s", code, body)
	}

	to := otherMember(from)
	var mv MoveInfo
	if code, body := call(t, h, "POST", "/affinity/move", `{"user":"alice","to":"`+to+`"}`, &mv); code != 200 ||
		mv.From != from || mv.To != to || mv.Confirmed != 1 || mv.TimedOut {
		t.Fatalf("move: %d %s", code, body)
	}
	if m, l := assign(t, s, "alice"); m != to {
		t.Fatalf("alice on %s after the move to %s", m, to)
	} else {
		s.SessionEnd(ctx, l)
	}

	var ev EvacuateInfo
	if code, body := call(t, h, "POST", "/affinity/evacuate", `{"member":"`+to+`"}`, &ev); code != 200 ||
		len(ev.Moved) == 0 || ev.Error != "" {
		t.Fatalf("evacuate: %d %s", code, body)
	}
	for _, m := range ev.Moved {
		if m.From != to || m.To == to || m.TimedOut {
			t.Fatalf("evacuation move %+v", m)
		}
	}

	// Bad input names the field; unknown names are 404.
	wantError(t, h, "GET", "/affinity", "", 400, "user")
	wantError(t, h, "GET", "/affinity?pool=nope&user=x", "", 404, "pool")
	wantError(t, h, "GET", "/affinity/pools?pool=nope", "", 404, "pool")
	wantError(t, h, "POST", "/affinity/move", `{"to":"m1"}`, 400, "user")
	wantError(t, h, "POST", "/affinity/move", `{"user":"a","to":"m9"}`, 404, "to")
	wantError(t, h, "POST", "/affinity/move", `{"user":"a","member":"m1"}`, 400, "")
	wantError(t, h, "POST", "/affinity/move", `{"user":`, 400, "")
	wantError(t, h, "POST", "/affinity/weight", `{"member":"m1"}`, 400, "weight")
	wantError(t, h, "POST", "/affinity/weight", `{"member":"m1","weight":-2}`, 400, "weight")
	wantError(t, h, "POST", "/affinity/weight", `{"weight":1}`, 400, "member")
	wantError(t, h, "POST", "/affinity/weight", `{"member":"m9","weight":1}`, 404, "member")
	wantError(t, h, "POST", "/affinity/evacuate", `{"member":"m9"}`, 404, "member")
	wantError(t, h, "POST", "/affinity/evacuate", `{}`, 400, "member")

	// A move while another runs: 409.
	if err := s.rdb.HSet(ctx, s.k.user("bob"), "v", time.Now().Add(time.Hour).UnixMilli(), "t", "x").Err(); err != nil {
		t.Fatal(err)
	}
	wantError(t, h, "POST", "/affinity/move", `{"user":"bob"}`, 409, "")
	if code, body := call(t, h, "GET", "/affinity?user=bob", "", &u); code != 200 || !u.Moving {
		t.Fatalf("bob while moving: %d %s", code, body)
	}

	// With two pools, the pool must be named.
	h2 := Handler(map[string]*Store{pool: s, "other": newStore(t, s.rdb, testPool(t), nil)})
	wantError(t, h2, "GET", "/affinity?user=alice", "", 400, "pool")
	if code, body := call(t, h2, "GET", "/affinity/pools", "", &pools); code != 200 || len(pools) != 2 || pools[0].Pool != pool {
		t.Fatalf("two pools: %d %s", code, body)
	}

	// A browser's cross-site POST is refused; the method is checked.
	r := httptest.NewRequest("POST", "/affinity/weight", strings.NewReader(`{"member":"m1","weight":0}`))
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d %s", rec.Code, rec.Body)
	}
	if code, _ := call(t, h, "GET", "/affinity/move", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /affinity/move: %d", code)
	}
}

// TestHandlerRedisDown: without Redis the API answers 503.
func TestHandlerRedisDown(t *testing.T) {
	s := newStore(t, newClient(t, "127.0.0.1:1"), testPool(t), nil)
	h := Handler(map[string]*Store{"p": s})
	wantError(t, h, "GET", "/affinity?user=alice", "", 503, "")
	wantError(t, h, "GET", "/affinity/pools", "", 503, "")
	wantError(t, h, "POST", "/affinity/weight", `{"member":"m1","weight":0}`, 503, "")
	wantError(t, h, "POST", "/affinity/move", `{"user":"alice","to":"m1"}`, 503, "")
}

// TestHandlerNoPools: an instance without pools answers every request
// that names or needs one with 404 and says why, rather than ask for a
// pool name it could not take.
func TestHandlerNoPools(t *testing.T) {
	h := Handler(nil)
	for _, r := range []struct{ method, target, body string }{
		{"GET", "/affinity?user=alice", ""},
		{"POST", "/affinity/move", `{"user":"alice"}`},
		{"POST", "/affinity/weight", `{"member":"m1","weight":0}`},
	} {
		code, body := call(t, h, r.method, r.target, r.body, nil)
		if code != http.StatusNotFound || !strings.Contains(body, "this instance has no pools") {
			t.Errorf("%s %s: %d %s; want 404 saying the instance has no pools", r.method, r.target, code, body)
		}
	}
	var ps []PoolInfo
	if code, body := call(t, h, "GET", "/affinity/pools", "", &ps); code != http.StatusOK || len(ps) != 0 {
		t.Errorf("GET /affinity/pools: %d %s; want 200 and no pools", code, body)
	}
}

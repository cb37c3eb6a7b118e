package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/goleak"
)

// ctlEnv is an instance's admin API (affinity.Handler on a real Redis)
// with one pool, "shared", of members m1, m2, m3.
type ctlEnv struct {
	s   *affinity.Store
	url string
}

func newCtlEnv(t *testing.T) *ctlEnv {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) }) // runs last
	srv, err := realserver.StartRedis(t.TempDir())
	realserver.Need(t, err)
	t.Cleanup(func() { srv.Stop() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { rdb.Close() })
	s, err := affinity.New(affinity.Config{Client: rdb, Pool: "shared",
		Members:   []affinity.Member{{Name: "m1", Weight: 1}, {Name: "m2", Weight: 1}, {Name: "m3", Weight: 1}},
		Heartbeat: 50 * time.Millisecond, WarmUp: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Joined():
	case <-time.After(10 * time.Second):
		t.Fatal("not joined in 10s")
	}
	api := httptest.NewServer(affinity.Handler(map[string]*affinity.Store{"shared": s}))
	t.Cleanup(api.Close)
	return &ctlEnv{s: s, url: api.URL}
}

// session logs user in (past the warm-up) and ends the session when a
// move kicks it.
func (e *ctlEnv) session(t *testing.T, user string) string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m, l, err := e.s.Assign(ctx, user)
		if err == nil {
			if err := e.s.SessionStart(ctx, l); err != nil {
				t.Fatal(err)
			}
			go func() { <-l.Kicked(); e.s.SessionEnd(context.Background(), l) }()
			t.Cleanup(func() { e.s.SessionEnd(context.Background(), l) })
			return m
		}
		if !errors.Is(err, affinity.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("assign %s: %v", user, err)
		}
		<-tick.C // the warm-up of a fresh store has no event to wait for
	}
}

// ctl runs `pipegate ctl --admin URL ARGS...`.
func (e *ctlEnv) ctl(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"ctl", "--admin", e.url}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCtl(t *testing.T) {
	e := newCtlEnv(t)
	from := e.session(t, "alice")
	to := "m1"
	if from == "m1" {
		to = "m2"
	}
	ok := func(want []string, args ...string) string {
		t.Helper()
		code, out, errs := e.ctl(args...)
		if code != 0 || errs != "" {
			t.Fatalf("ctl %q: exit %d, stderr %q", args, code, errs)
		}
		t.Logf("pipegate ctl %s\n%s", strings.Join(args, " "), out)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("ctl %q printed\n%s\nwithout %q", args, out, w)
			}
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		code, out, errs := e.ctl(args...)
		if code != 2 || out != "" || !strings.Contains(errs, want) {
			t.Fatalf("ctl %q: exit %d, stdout %q, stderr %q; want 2 and %q", args, code, out, errs, want)
		}
	}

	ok([]string{"user      alice", "member    " + from, "sessions  1 (" + e.s.Instance() + "=1)", "held by its sessions"}, "show", "alice")
	ok([]string{"(not assigned"}, "show", "nobody", "--pool", "shared") // flags after the command
	ok([]string{"pool shared", "MEMBER", "m1", "m3"}, "pools")
	ok([]string{"m2: weight 0 (configured 1)", "drained"}, "drain", "m2")
	ok([]string{"0 (of 1) drained"}, "--pool", "shared", "pools")
	ok([]string{"m2: weight 3 (configured 1)"}, "weight", "m2", "3")
	ok([]string{"m2: weight 1 (configured 1)"}, "weight", "m2", "reset")
	ok([]string{"alice: " + from + " -> " + to, "confirmed by 1 of 1"}, "move", "alice", to)
	ok([]string{"member    " + to}, "show", "alice")
	ok([]string{"alice: " + to + " -> ", to + ": drained, 1 user(s) moved"}, "evacuate", to)
	if _, l, err := e.s.Assign(context.Background(), "bob"); err != nil { // bob's login runs
		t.Fatal(err)
	} else {
		ok([]string{"user      bob", "sessions  0", "logins    1 in progress"}, "show", "bob")
		e.s.SessionEnd(context.Background(), l)
	}

	var u affinity.UserInfo
	_, out, _ := e.ctl("--json", "show", "alice")
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.User != "alice" || u.Member == to {
		t.Fatalf("--json show: %q: %v", out, err)
	}

	fails("usage: pipegate ctl show USER", "show")
	fails("usage: pipegate ctl move USER MEMBER", "move", "alice")
	fails(`pool "shared" has no member "m9"`, "move", "alice", "m9")
	fails("field to", "move", "alice", "m9")
	fails("404", "drain", "m9")
	fails("want a number", "weight", "m1", "x")
	fails(`no pool "nope"`, "--pool", "nope", "pools")
	fails(`unknown command "frobnicate"`, "frobnicate")
	fails("usage: pipegate ctl", "--admin", "127.0.0.1:1") // no command
	if code, _, errs := e.ctl("--admin", "127.0.0.1:1", "pools"); code != 2 || !strings.Contains(errs, "admin API at http://127.0.0.1:1") {
		t.Fatalf("unreachable admin: %d %q", code, errs)
	}
	if code, _, errs := e.ctl("--admin", "ftp://x", "pools"); code != 2 || !strings.Contains(errs, "--admin") {
		t.Fatalf("bad --admin: %d %q", code, errs)
	}
}

package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
)

// Affinity (docs/affinity.md): every session of a user, on every
// pipegate instance and in every protocol, reaches one member of a pool
// of Dovecots on shared storage; a move kicks the user's sessions on
// every instance first; without Redis no login gets through. The
// Dovecots' logs are the witness: which member logged each login, and
// when each session began and ended.

// affSrc is the client address of user i (one per user: Dovecot's and
// pipegate's per-address limits stay out of the way).
func affSrc(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) }

// TestAffinitySameMember: the same user through two instances, over IMAP
// and POP3, always reaches the same member; users spread over members.
func TestAffinitySameMember(t *testing.T) {
	c := startAffinity(t, affOptions{members: 2, instances: 2, users: 8})
	// Each user keeps an IMAP session open on one instance: the loads
	// count, so the bounded-load rule spreads the users (no member above
	// ceil(1.25*(n+1)/2) while n users are placed).
	held := map[string]*mailConn{}
	for i, u := range c.users {
		held[u] = mustIMAP(t, affSrc(i), c.insts[i%2].imap, u)
	}
	for i, u := range c.users {
		if err := mustIMAP(t, affSrc(i), c.insts[(i+1)%2].imap, u).logout(); err != nil {
			t.Fatalf("%s: IMAP logout: %v", u, err)
		}
		for _, in := range c.insts {
			mc, l, err := pop3Login(affSrc(i), in.pop3, u)
			if mc == nil {
				t.Fatalf("%s: POP3 login through %s: %q %v", u, in.pop3, l, err)
			}
			if err := mc.quit(); err != nil {
				t.Fatalf("%s: POP3: %v", u, err)
			}
		}
	}
	byMember := map[string][]string{}
	memberOf := map[string]string{}
	for _, u := range c.users {
		c.waitLogins(u, 4) // IMAP on both instances, POP3 on both
		ms := c.membersOf(u)
		if len(ms) != 1 {
			t.Errorf("%s logged in on members %v, want one", u, ms)
			continue
		}
		memberOf[u] = ms[0]
		byMember[ms[0]] = append(byMember[ms[0]], u)
	}
	t.Logf("users by member: %v", byMember)
	if len(byMember) < 2 {
		t.Errorf("every user on one member: %v", byMember)
	}

	// Both instances' admin API say the same.
	for _, in := range c.insts {
		for _, u := range c.users {
			ui, code, body := c.assignment(in, u)
			if code != 200 {
				t.Errorf("GET /affinity on %s: %d %s", in.http, code, body)
				break
			}
			if ui.Member != memberOf[u] {
				t.Errorf("GET /affinity on %s: %s assigned to %q, Dovecot's logs say %q", in.http, u, ui.Member, memberOf[u])
			}
			if n := sumSessions(ui); n != 1 || ui.Moving {
				t.Errorf("GET /affinity on %s: %s has %d sessions (%v), moving %v; want the 1 held IMAP session", in.http, u, n, ui.Sessions, ui.Moving)
			}
		}
	}
	for u, mc := range held {
		if err := mc.logout(); err != nil {
			t.Errorf("%s: logout: %v", u, err)
		}
	}
	// Every session logged its end (IMAP "Logged out", POP3
	// "Disconnected: Logged out"): the witness of the checks below and of
	// the other tests sees both ends of a session.
	waitUntil(t, "every IMAP and POP3 session's end in the Dovecots' logs", func() bool {
		for _, s := range c.allSessions() {
			if s.end.IsZero() {
				return false
			}
		}
		return true
	})
	c.checkNoSplit()
}

// TestAffinityMoveKicks: a move while the user idles on two instances
// closes both sessions with a BYE; the client's next login lands on the
// new member, and by the Dovecots' logs the old member's sessions ended
// before the first on the new one began. Then `pipegate ctl move` moves
// the user back the same way.
func TestAffinityMoveKicks(t *testing.T) {
	c := startAffinity(t, affOptions{members: 2, instances: 2, users: 2})
	u := c.users[0]
	if code, body := adminGet(t, c.insts[0], "/affinity/pools", nil); code != 200 {
		t.Fatalf("GET /affinity/pools: %d %s (the admin API is not served on metrics_addr?)", code, body)
	}
	idlers := []*mailConn{
		mustIMAP(t, "127.0.2.1", c.insts[0].imap, u),
		mustIMAP(t, "127.0.2.2", c.insts[1].imap, u),
	}
	for i, mc := range idlers {
		if err := mc.idle(); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	c.waitLogins(u, 2)
	ms := c.membersOf(u)
	if len(ms) != 1 {
		t.Fatalf("%s on members %v before the move, want one", u, ms)
	}
	from, to := ms[0], "m1"
	if from == "m1" {
		to = "m2"
	}

	moved := make(chan moveAnswer, 1)
	go postMove(moved, "http://"+c.insts[0].http+"/affinity/move", affinity.MoveInfo{Pool: "shared", User: u, To: to})
	for i, mc := range idlers {
		out, err := mc.untilEOF()
		if !strings.Contains(out, "* BYE "+gateway.TextMoved) {
			t.Errorf("idling session %d (instance %d) at the move: read %q then %v, want * BYE %s and EOF", i+1, i+1, out, err, gateway.TextMoved)
		}
	}
	// The client logs in again at once through the other instance:
	// refused while the move runs, then let in on the new member.
	mc, refused := loginUntilOK(t, 20*time.Second, func() (*mailConn, string, error) {
		return imapLogin("127.0.2.2", c.insts[1].imap, u)
	}, "[UNAVAILABLE]")
	t.Logf("%d logins refused with [UNAVAILABLE] while the move ran", refused)
	a := <-moved
	if a.err != nil || a.code != 200 {
		t.Fatalf("POST /affinity/move: %d %s %v", a.code, a.body, a.err)
	}
	if a.info.From != from || a.info.To != to || a.info.TimedOut || a.info.Confirmed != a.info.Instances || a.info.Instances < 2 {
		t.Errorf("move answer %+v: want from %s to %s, every instance (2) confirmed, no time-out", a.info, from, to)
	}
	c.waitLogins(u, 3)
	ss := c.userSessions(u)
	if last := ss[len(ss)-1]; last.member != to {
		t.Errorf("the login after the move reached %s, want %s", last.member, to)
	}
	// The old member logs the end of both sessions (the kick closed the
	// backend connections), and before the new member's first login.
	waitUntil(t, "the sessions on "+from+" ended in its log", func() bool {
		for _, s := range c.userSessions(u) {
			if s.member == from && s.end.IsZero() {
				return false
			}
		}
		return true
	})
	var lastEnd, firstNew time.Time
	for _, s := range c.userSessions(u) {
		switch {
		case s.member == from && s.end.After(lastEnd):
			lastEnd = s.end
		case s.member == to && (firstNew.IsZero() || s.start.Before(firstNew)):
			firstNew = s.start
		}
	}
	if !lastEnd.Before(firstNew) {
		t.Errorf("%s's last session on %s ended at %s, its first on %s began at %s: open on both members at once",
			u, from, stamp(lastEnd), to, stamp(firstNew))
	} else {
		t.Logf("old member's last session end -> new member's first login: %v", firstNew.Sub(lastEnd))
	}
	for _, in := range c.insts {
		ui, code, body := c.assignment(in, u)
		if code != 200 || ui.Member != to || ui.Moving || sumSessions(ui) != 1 {
			t.Errorf("GET /affinity on %s after the move: %d %s, want member %s, not moving, 1 session", in.http, code, body, to)
		}
	}

	// And back with `pipegate ctl`, through the other instance's admin
	// API, while the session on the new member idles.
	if err := mc.idle(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pipegateBin, "ctl", "--admin", c.insts[1].http, "--json", "move", u, from).CombinedOutput()
	var back affinity.MoveInfo
	if err != nil || json.Unmarshal(out, &back) != nil || back.From != to || back.To != from || back.TimedOut {
		t.Errorf("pipegate ctl move %s %s: %v\n%s", u, from, err, out)
	}
	if got, err := mc.untilEOF(); !strings.Contains(got, "* BYE") {
		t.Errorf("idling session at the move by pipegate ctl: read %q then %v, want * BYE and EOF", got, err)
	}
	again := mustIMAP(t, "127.0.2.3", c.insts[0].imap, u)
	c.waitLogins(u, 4)
	if ss := c.userSessions(u); ss[len(ss)-1].member != from {
		t.Errorf("the login after the move back reached %s, want %s", ss[len(ss)-1].member, from)
	}
	if err := again.logout(); err != nil {
		t.Errorf("logout after the move back: %v", err)
	}
	c.checkNoSplit()
}

// moveAnswer is what POST /affinity/move said.
type moveAnswer struct {
	code int
	body string
	info affinity.MoveInfo
	err  error
}

// postMove asks for a move and sends the answer on out.
func postMove(out chan<- moveAnswer, url string, req affinity.MoveInfo) {
	var a moveAnswer
	a.code, a.body, a.err = adminCall("POST", url, map[string]string{"pool": req.Pool, "user": req.User, "to": req.To}, &a.info)
	out <- a
}

// loginUntilOK tries login until it lets the user in, within limit; every
// other answer must hold refusal (as "[UNAVAILABLE]"). It returns the
// session and how many tries were refused.
func loginUntilOK(t *testing.T, limit time.Duration, login func() (*mailConn, string, error), refusal string) (*mailConn, int) {
	t.Helper()
	deadline := time.Now().Add(limit)
	refused := 0
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		mc, l, err := login()
		if mc != nil {
			t.Cleanup(mc.close)
			return mc, refused
		}
		if err != nil || !strings.Contains(l, refusal) {
			t.Fatalf("login answered %q (%v), want OK or a refusal with %s", l, err, refusal)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatalf("login still refused after %v (%d tries): %q", limit, refused, l)
		}
		time.Sleep(delay) // retrying as a client does, with a deadline
	}
}

// TestAffinityStorm: 60 users log in at once through three instances and
// keep a session; loads stay within the bound. Then, while they log in
// and out, a fourth member is added (its weight raised from 0), one
// member is drained (weight 0) and another killed. No user is
// ever on two members at once; the killed member's users land on the
// remaining undrained member; the drained member keeps its users.
func TestAffinityStorm(t *testing.T) {
	const nUsers, workers, cycles = 60, 6, 25
	c := startAffinity(t, affOptions{members: 3, spare: 1, instances: 3, users: nUsers, expire: "2s", health: true})

	// Phase 1: every user logs in, concurrently, and keeps the session.
	held := make([]*mailConn, nUsers)
	t.Cleanup(func() {
		for _, mc := range held {
			if mc != nil {
				mc.close()
			}
		}
	})
	jobs := make(chan int)
	errs := make(chan error, nUsers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go holdSessions(&wg, jobs, errs, c, held)
	}
	for i := range nUsers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("phase 1: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	c.waitLogins("", nUsers)
	load := map[string]int{}
	memberOf := map[string]string{}
	for _, u := range c.users {
		ms := c.membersOf(u)
		if len(ms) != 1 {
			t.Errorf("%s on members %v, want one", u, ms)
			continue
		}
		memberOf[u] = ms[0]
		load[ms[0]]++
	}
	// Every pick saw the sessions started before it; at most workers-1
	// others were between their pick and their start.
	bound := int(math.Ceil(1.25*float64(nUsers)/3)) + workers - 1
	t.Logf("sessions by member after %d concurrent logins: %v (bound %d)", nUsers, load, bound)
	if load["m4"] != 0 {
		t.Errorf("m4, configured with weight 0, took %d users", load["m4"])
	}
	for m, n := range load {
		if n > bound {
			t.Errorf("member %s holds %d sessions, above ceil(1.25*%d/3)+%d = %d", m, n, nUsers, workers-1, bound)
		}
	}

	// Phase 2: churn (log in, NOOP, log out; IMAP and POP3, every
	// instance); after a fifth of it m1 is drained, after three tenths m4
	// added, after two fifths m2 killed.
	drained, killed := c.member("m1"), c.member("m2")
	progress := make(chan churnResult)
	var cw sync.WaitGroup
	for w := range workers {
		cw.Add(1)
		go churn(&cw, progress, c, w, workers, cycles)
	}
	go closeWhenDone(&cw, progress)
	var done, ok, refusedN, cut int
	var bad []string
	for r := range progress {
		done++
		switch {
		case r.ok:
			ok++
		case r.refused:
			refusedN++
		case r.cut && memberOf[r.user] == killed.name:
			cut++ // a session on the member that was killed
		default:
			bad = append(bad, r.what)
		}
		switch done {
		case workers * cycles / 5:
			var wi affinity.WeightInfo
			if code, body := adminPost(t, c.insts[1], "/affinity/weight", map[string]any{"pool": "shared", "member": drained.name, "weight": 0}, &wi); code != 200 || wi.Weight != 0 {
				t.Errorf("POST /affinity/weight m1 0: %d %s", code, body)
			}
		case 3 * workers * cycles / 10:
			// A member added: m4, configured with weight 0, takes new users.
			var wi affinity.WeightInfo
			if code, body := adminPost(t, c.insts[2], "/affinity/weight", map[string]any{"pool": "shared", "member": "m4", "weight": 1}, &wi); code != 200 || wi.Weight != 1 {
				t.Errorf("POST /affinity/weight m4 1: %d %s", code, body)
			}
		case 2 * workers * cycles / 5:
			c.kill(killed)
			// Its users' idling clients see the end and close, as IMAP
			// clients in IDLE do. (One that does not read keeps its
			// half-closed session, and with it the user on the dead
			// member, for half_close_linger.)
			for i, u := range c.users {
				if memberOf[u] == killed.name {
					if out, err := held[i].untilEOF(); err != nil {
						t.Errorf("%s's session on the killed %s: read %q then %v, want EOF", u, killed.name, out, err)
					}
					held[i].close()
				}
			}
		}
	}
	t.Logf("churn: %d logins, %d OK, %d refused as unavailable, %d cut with the killed member, %d other", done, ok, refusedN, cut, len(bad))
	for _, b := range bad {
		t.Errorf("churn: %s", b)
	}

	// The drained member keeps its users (their sessions live on); the
	// killed member's users come back on the members left for new
	// assignments (m3, the added m4), once health checks marked it down.
	for i, u := range c.users {
		switch memberOf[u] {
		case killed.name:
			mc, _ := loginUntilOK(t, 15*time.Second, func() (*mailConn, string, error) {
				return imapLogin(affSrc(i), c.insts[i%3].imap, u)
			}, "[UNAVAILABLE]")
			if err := mc.logout(); err != nil {
				t.Errorf("%s: logout: %v", u, err)
			}
		default:
			if l, err := held[i].cmd("DONE", "i "); err != nil || !strings.HasPrefix(l, "i OK") {
				t.Errorf("%s's session on %s after the drain and the kill: IDLE ended with %q %v", u, memberOf[u], l, err)
			} else if l, err := held[i].cmd("n NOOP", "n "); err != nil || !strings.HasPrefix(l, "n OK") {
				t.Errorf("%s's session on %s after the drain and the kill: %q %v", u, memberOf[u], l, err)
			}
		}
	}
	for _, u := range c.users {
		if memberOf[u] != killed.name {
			continue
		}
		ss := c.userSessions(u)
		if last := ss[len(ss)-1]; last.member != "m3" && last.member != "m4" || last.start.Before(killed.killedAt) {
			t.Errorf("%s (was on %s, killed) last logged in on %s at %s, want m3 or the added m4 after the kill (%s)", u, killed.name, last.member, stamp(last.start), stamp(killed.killedAt))
		}
	}
	for _, u := range c.users {
		if memberOf[u] != drained.name {
			continue
		}
		if ms := c.membersOf(u); len(ms) != 1 {
			t.Errorf("%s (on the drained %s with a live session) was served by %v", u, drained.name, ms)
		}
	}
	var pools []affinity.PoolInfo
	if code, body := adminGet(t, c.insts[2], "/affinity/pools", &pools); code != 200 || len(pools) != 1 {
		t.Errorf("GET /affinity/pools: %d %s", code, body)
	} else {
		for _, m := range pools[0].Members {
			if m.Name == drained.name && m.Weight != 0 {
				t.Errorf("GET /affinity/pools: drained %s has weight %d", m.Name, m.Weight)
			}
			if m.Name == killed.name && m.Up {
				t.Errorf("GET /affinity/pools: killed %s is up", m.Name)
			}
		}
	}
	c.checkNoSplit()
}

// holdSessions logs in the users it is given and keeps their sessions,
// idling.
func holdSessions(wg *sync.WaitGroup, jobs <-chan int, errs chan<- error, c *affCluster, held []*mailConn) {
	defer wg.Done()
	for i := range jobs {
		u := c.users[i]
		mc, l, err := imapLogin(affSrc(i), c.insts[i%len(c.insts)].imap, u)
		if mc == nil {
			errs <- fmt.Errorf("%s through instance %d: %q %v", u, i%len(c.insts)+1, l, err)
			continue
		}
		held[i] = mc
		if err := mc.idle(); err != nil {
			errs <- fmt.Errorf("%s: %v", u, err)
		}
	}
}

// churnResult is one login of the churn.
type churnResult struct {
	ok, refused bool
	// cut: logged in, then the session ended before its last answer (its
	// member was killed, or it was kicked off the dead member)
	cut  bool
	user string
	what string // for none of them: what happened
}

// churn runs cycles logins of worker w: user, protocol and instance vary
// with the cycle.
func churn(wg *sync.WaitGroup, out chan<- churnResult, c *affCluster, w, workers, cycles int) {
	defer wg.Done()
	for k := range cycles {
		i := (w + k*workers*7) % len(c.users)
		u, in := c.users[i], c.insts[(w+k)%len(c.insts)]
		r := churnResult{user: u}
		if k%3 == 2 {
			mc, l, err := pop3Login(affSrc(i), in.pop3, u)
			switch {
			case mc != nil:
				r.ok = true
				if err := mc.quit(); err != nil {
					r.ok, r.cut, r.what = false, true, fmt.Sprintf("%s POP3 QUIT: %v", u, err)
				}
			case strings.HasPrefix(l, "-ERR [SYS/TEMP]"):
				r.refused = true
			default:
				r.what = fmt.Sprintf("%s POP3 through %s: %q %v", u, in.pop3, l, err)
			}
		} else {
			mc, l, err := imapLogin(affSrc(i), in.imap, u)
			switch {
			case mc != nil:
				r.ok = true
				if l, err := mc.cmd("n NOOP", "n "); err != nil || !strings.HasPrefix(l, "n OK") {
					// A kick or the member's death may end it.
					r.ok, r.cut, r.what = false, true, fmt.Sprintf("%s NOOP: %q %v", u, l, err)
				} else if err := mc.logout(); err != nil {
					r.ok, r.cut, r.what = false, true, fmt.Sprintf("%s LOGOUT: %v", u, err)
				}
				mc.close()
			case strings.HasPrefix(l, "a NO [UNAVAILABLE]"):
				r.refused = true
			default:
				r.what = fmt.Sprintf("%s IMAP through %s: %q %v", u, in.imap, l, err)
			}
		}
		out <- r
	}
}

// closeWhenDone closes out once the churn's workers are done.
func closeWhenDone(wg *sync.WaitGroup, out chan churnResult) {
	wg.Wait()
	close(out)
}

// TestAffinityRedisRestart: Redis stops while users hold sessions: their
// sessions go on, new logins are refused as unavailable (IMAP NO
// [UNAVAILABLE], POP3 -ERR [SYS/TEMP]); after Redis is back, empty, the
// instances re-publish their sessions and logins succeed again by
// themselves, each user on the member of its held session.
func TestAffinityRedisRestart(t *testing.T) {
	const nUsers, fresh = 6, 2 // users holding a session, users without one
	c := startAffinity(t, affOptions{members: 2, instances: 2, users: nUsers + fresh})
	held := make([]*mailConn, nUsers)
	for i, u := range c.users[:nUsers] {
		held[i] = mustIMAP(t, affSrc(i), c.insts[i%2].imap, u)
	}
	c.waitLogins("", nUsers)
	memberOf := map[string]string{}
	for _, u := range c.users[:nUsers] {
		ms := c.membersOf(u)
		if len(ms) != 1 {
			t.Fatalf("%s on members %v, want one", u, ms)
		}
		memberOf[u] = ms[0]
	}
	noop := func(when string) {
		t.Helper()
		for i, mc := range held {
			if l, err := mc.cmd("n NOOP", "n "); err != nil || !strings.HasPrefix(l, "n OK") {
				t.Errorf("%s: %s's held session: NOOP %q %v", when, c.users[i], l, err)
			}
		}
	}

	if err := c.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	noop("Redis down")
	for i, u := range c.users {
		in := c.insts[(i+1)%2]
		if mc, l, err := imapLogin(affSrc(i), in.imap, u); mc != nil || !strings.HasPrefix(l, "a NO [UNAVAILABLE]") {
			t.Errorf("IMAP login of %s through %s with Redis down: %q %v, want a NO [UNAVAILABLE]", u, in.imap, l, err)
			if mc != nil {
				mc.close()
			}
		}
		if mc, l, err := pop3Login(affSrc(i), in.pop3, u); mc != nil || !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
			t.Errorf("POP3 login of %s through %s with Redis down: %q %v, want -ERR [SYS/TEMP]", u, in.pop3, l, err)
			if mc != nil {
				mc.close()
			}
		}
	}

	// Back, without the data: no new assignment during the warm-up
	// (affinity.DefaultWarmUp) while the instances re-publish their
	// sessions; then logins succeed again.
	if err := c.redis.Start(); err != nil {
		t.Fatal(err)
	}
	// Users with a held session first (their assignment is re-published),
	// then users without one (a new assignment, after the warm-up).
	for i, u := range c.users {
		start := time.Now()
		mc, n := loginUntilOK(t, affinity.DefaultWarmUp+15*time.Second, func() (*mailConn, string, error) {
			return imapLogin(affSrc(i), c.insts[(i+1)%2].imap, u)
		}, "[UNAVAILABLE]")
		t.Logf("%s (held session: %v) let in %v after the restart, %d refusals before", u, i < nUsers, time.Since(start).Round(time.Millisecond), n)
		if err := mc.logout(); err != nil {
			t.Errorf("%s: logout: %v", u, err)
		}
	}
	c.waitLogins("", 2*nUsers+fresh)
	for _, u := range c.users[:nUsers] {
		if ms := c.membersOf(u); !slices.Equal(ms, []string{memberOf[u]}) {
			t.Errorf("%s held a session on %s through the outage, and was served by %v", u, memberOf[u], ms)
		}
	}
	noop("after the restart")
	c.checkNoSplit()
}

// TestAffinitySplitWitness: the log check of the tests above finds
// overlapping sessions of one user on two members, and only those.
func TestAffinitySplitWitness(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.Local)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	never := at(1 << 30)
	killed := at(500)
	endOf := func(s dsession) time.Time {
		switch {
		case !s.end.IsZero():
			return s.end
		case s.member == "dead":
			return killed
		}
		return never
	}
	sess := func(user, member string, start, end int) dsession {
		s := dsession{user: user, member: member, proto: "imap", id: fmt.Sprint(start), start: at(start)}
		if end >= 0 {
			s.end = at(end)
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		sessions []dsession
		want     int
	}{
		{"one after the other", []dsession{sess("u", "m1", 0, 100), sess("u", "m2", 101, 200)}, 0},
		{"overlap on two members", []dsession{sess("u", "m1", 0, 100), sess("u", "m2", 99, 200)}, 1},
		{"overlap on one member", []dsession{sess("u", "m1", 0, 100), sess("u", "m1", 50, 200)}, 0},
		{"two users, two members", []dsession{sess("u", "m1", 0, 100), sess("v", "m2", 50, 200)}, 0},
		{"open session, then another member", []dsession{sess("u", "m1", 0, -1), sess("u", "m2", 1000, 1100)}, 1},
		{"killed member's open session, then another member", []dsession{sess("u", "dead", 0, -1), sess("u", "m2", 501, 600)}, 0},
		{"login on another member before the kill", []dsession{sess("u", "dead", 0, -1), sess("u", "m2", 499, 600)}, 1},
	} {
		if got := splits(tc.sessions, endOf); len(got) != tc.want {
			t.Errorf("%s: %d splits %q, want %d", tc.name, len(got), got, tc.want)
		}
	}
	// The log lines as Dovecot 2.3 writes them with affDovecotLog.
	for _, tc := range []struct {
		line        string
		login, end  bool
		user, proto string
	}{
		{"2026-12-06 04:50:01.123456 imap-login: Info: Login: user=<u01@a.test>, method=PLAIN, rip=127.0.1.1, lip=127.0.0.1, mpid=1234, session=<AbCd>", true, false, "u01@a.test", "imap"},
		{"2026-12-06 04:50:01.123456 pop3-login: Info: Login: user=<u01@a.test>, method=PLAIN, rip=127.0.1.1, lip=127.0.0.1, mpid=1235, secured, session=<Ef>", true, false, "u01@a.test", "pop3"},
		{"2026-12-06 04:50:01.100000 imap(u01@a.test)<1234><AbCd>: Debug: Effective uid=65534, gid=65534, home=/tmp/x", false, false, "u01@a.test", "imap"},
		{"2026-12-06 04:50:02.000001 imap(u01@a.test)<1234><AbCd>: Info: Logged out in=20 out=500", false, true, "u01@a.test", "imap"},
		{"2026-12-06 04:50:02.000001 imap(u01@a.test)<1234><AbCd>: Info: Disconnected: Logged out in=8 out=470", false, true, "u01@a.test", "imap"},
		{"2026-12-06 04:50:02.000001 imap(u01@a.test)<1234><AbCd>: Info: Disconnected: Connection closed (IDLE running for 1.001 secs)", false, true, "u01@a.test", "imap"},
		{"2026-12-06 04:50:02.000001 pop3(u01@a.test)<1235><Ef>: Info: Disconnected: Logged out top=0/0, retr=0/0", false, true, "u01@a.test", "pop3"},
		{"2026-12-06 04:50:02.000001 imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=127.0.0.1", false, false, "", ""},
	} {
		l, e := loginLine.FindStringSubmatch(tc.line), mailLine.FindStringSubmatch(tc.line)
		if (l != nil) != tc.login || (e != nil && isEnd(e[6], e[7])) != tc.end || (l == nil && e == nil && tc.user != "") {
			t.Errorf("%q: login %v mail process %v, want login %v end %v", tc.line, l != nil, e != nil, tc.login, tc.end)
			continue
		}
		for _, g := range [][]string{l, e} {
			if g != nil && (g[2] != tc.proto || g[3] != tc.user) {
				t.Errorf("%q: protocol %q user %q, want %q %q", tc.line, g[2], g[3], tc.proto, tc.user)
			}
		}
	}
}

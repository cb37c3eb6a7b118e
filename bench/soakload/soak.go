package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// soak is one run: the servers, what the churn did, the samples.
type soak struct {
	o     options
	env   *env
	tally *tally
	hello []byte // a whole ClientHello record, which vanishing clients cut short

	churnCtx context.Context // ends when the churn stops: idle and long holds end early
	start    time.Time       // the churn's start

	mu       sync.Mutex
	samples  map[string][]sample // by daemon name
	reloads  int
	findings []string
}

func newSoak(o options, e *env) *soak {
	return &soak{o: o, env: e, tally: newTally(), samples: map[string][]sample{}}
}

func (s *soak) daemons() []*daemon { return []*daemon{s.env.mail, s.env.fwd} }

func (s *soak) finding(format string, args ...any) {
	s.mu.Lock()
	s.findings = append(s.findings, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// Tolerances of the end-of-run checks: what may stay above the start
// level after the drain without being called growth.
const (
	fdSlack        = 4  // e.g. an HTTP keep-alive of the metrics scrape
	goroutineSlack = 10 // timers and workers that park lazily
)

// run does the whole soak and returns the findings.
func (s *soak) run(ctx context.Context) ([]string, error) {
	var err error
	if s.hello, err = clientHello(s.env.clientTLS); err != nil {
		return nil, err
	}
	s.awaitProbes(ctx)
	base := map[string]metrics{}
	for _, d := range s.daemons() {
		if base[d.name], err = scrape(d.metrics); err != nil {
			return nil, err
		}
	}
	s.warmUp()
	time.Sleep(2 * time.Second) // let the warm-up's sessions end (a bench, not a test)
	starts := map[string]sample{}
	fmt.Printf("soak: %v of churn (%d mail, %d idle, %d forward workers), sample every %v, SIGHUP every %v, Dovecot restart: %v\n",
		s.o.duration, s.o.mailWorkers, s.o.idleWorkers, s.o.fwdWorkers, s.o.sample, s.o.reload, s.o.restart)
	fmt.Printf("soak: goroutines from each daemon's /metrics (go_goroutines); fds, threads, RSS from /proc/PID\n")
	fmt.Printf("soak: mail pid %d, forward pid %d, folder %s\n\n%s\n", s.env.mail.proc.Pgid(), s.env.fwd.proc.Pgid(), s.env.dir, sampleHeader)
	for _, d := range s.daemons() {
		st, _ := take(d, 0)
		starts[d.name] = st
		s.record(d.name, st)
	}

	churn, stop := context.WithTimeout(ctx, s.o.duration)
	defer stop()
	s.churnCtx = churn
	s.start = time.Now()
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	for i := range s.o.mailWorkers {
		wg.Go(func() { s.mailWorker(churn, seed+uint64(i)) })
	}
	for i := range s.o.idleWorkers {
		wg.Go(func() { s.idleWorker(churn, seed+1000+uint64(i)) })
	}
	for i := range s.o.fwdWorkers {
		wg.Go(func() { s.forwardWorker(churn, seed+2000+uint64(i)) })
	}
	var side sync.WaitGroup
	side.Go(func() { s.sampler(churn) })
	if s.o.reload > 0 {
		side.Go(func() { s.reloader(churn) })
	}
	if s.o.restart {
		side.Go(func() { s.restarter(churn) })
	}
	<-churn.Done()
	side.Wait()
	waitOrWarn(&wg, "the churn's workers", opTimeout+time.Minute)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	fmt.Printf("\nsoak: churn stopped at %v; waiting for the sessions and connections to end\n", fmtAt(time.Since(s.start)))

	ends := s.drain(ctx)
	fmt.Printf("\n== start / peak / end (end: after the drain) ==\n")
	for _, d := range s.daemons() {
		summary(d.name, starts[d.name], ends[d.name], s.samples[d.name])
		s.checkGrowth(d.name, starts[d.name], ends[d.name])
	}
	findings := s.tally.print()
	s.checkCounts(base)
	s.stopDaemons()
	s.checkLogs()
	s.mu.Lock()
	findings = append(findings, s.findings...)
	s.mu.Unlock()
	if len(findings) > 0 {
		fmt.Printf("\n== FINDINGS ==\n")
		for _, f := range findings {
			fmt.Println("  - " + f)
		}
	}
	return findings, nil
}

// waitOrWarn waits for wg, or says after limit that something hangs.
func waitOrWarn(wg *sync.WaitGroup, what string, limit time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		fmt.Fprintf(os.Stderr, "soak: %s did not stop within %v (a client hangs?)\n", what, limit)
		<-done
	}
}

// warmUp runs every scenario once, so that the start level counts what
// the daemons set up lazily (worker pools, TLS caches).
func (s *soak) warmUp() {
	rng := rand.New(rand.NewPCG(1, 2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // idle holds end at once
	s.churnCtx = ctx
	for range 2 {
		for _, list := range [][]weighted{mailScenarios, forwardScenarios, idleScenarios} {
			for _, w := range list {
				start := time.Now()
				name, err := w.run(s, rng)
				s.tally.record(name, start, err)
			}
		}
	}
}

func (s *soak) record(name string, st sample) {
	s.mu.Lock()
	s.samples[name] = append(s.samples[name], st)
	s.mu.Unlock()
	fmt.Println(st.row(name))
}

// sampler samples both daemons every o.sample until ctx ends.
func (s *soak) sampler(ctx context.Context) {
	t := time.NewTicker(s.o.sample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range s.daemons() {
			st, _ := take(d, time.Since(s.start))
			s.record(d.name, st)
		}
	}
}

// reloader rewrites the routes file and the forward config (alternating
// two contents) and sends both daemons SIGHUP every o.reload.
func (s *soak) reloader(ctx context.Context) {
	t := time.NewTicker(s.o.reload)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := os.WriteFile(s.env.routes, []byte(s.env.routesBody[i%2]), 0o644); err != nil {
			s.finding("reload: %v", err)
		}
		if err := os.WriteFile(s.env.fwd.config, []byte(s.env.forwardBody[i%2]), 0o644); err != nil {
			s.finding("reload: %v", err)
		}
		for _, d := range s.daemons() {
			if err := syscall.Kill(d.proc.Pgid(), syscall.SIGHUP); err != nil {
				s.finding("reload: SIGHUP to %s: %v", d.name, err)
			}
		}
		s.mu.Lock()
		s.reloads++
		s.mu.Unlock()
	}
}

// restarter kills Dovecot half-way and starts it again 3 s later; at
// three quarters it does the same to the forwards' echo server.
func (s *soak) restarter(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(s.o.duration / 2):
	}
	fmt.Printf("  -- %v: Dovecot killed; restarting in 3s\n", fmtAt(time.Since(s.start)))
	w := s.tally.setDown(time.Now())
	err := s.env.restartDovecot(ctx, 3*time.Second)
	s.tally.setUp(w, time.Now())
	if err != nil {
		s.finding("%v", err)
		return
	}
	fmt.Printf("  -- %v: Dovecot listening again\n", fmtAt(time.Since(s.start)))
	select {
	case <-ctx.Done():
		return
	case <-time.After(s.o.duration / 4):
	}
	fmt.Printf("  -- %v: echo server (the forwards' upstream) stopped; restarting in 3s\n", fmtAt(time.Since(s.start)))
	w = s.tally.setDown(time.Now())
	err = s.env.echo.restart(ctx, 3*time.Second)
	s.tally.setUp(w, time.Now())
	if err != nil {
		s.finding("%v", err)
		return
	}
	fmt.Printf("  -- %v: echo server listening again\n", fmtAt(time.Since(s.start)))
}

// drain waits until neither daemon counts an open session or
// connection, checks the per-address limits, waits again and for a
// garbage collection, then samples each daemon three times 2 s apart and
// returns the last samples.
func (s *soak) drain(ctx context.Context) map[string]sample {
	s.awaitClosed(ctx)
	s.limitCheck(rand.New(rand.NewPCG(3, 4)))
	s.awaitClosed(ctx)
	s.awaitGC(ctx)
	ends := map[string]sample{}
	for i := range 3 {
		time.Sleep(2 * time.Second) // let timers and parked goroutines end (a bench, not a test)
		for _, d := range s.daemons() {
			st, _ := take(d, time.Since(s.start))
			if i == 2 {
				ends[d.name] = st
			}
			s.record(d.name, st)
		}
	}
	return ends
}

// awaitClosed waits until neither daemon counts an open session or
// connection, or o.drainWait passes.
func (s *soak) awaitClosed(ctx context.Context) {
	deadline := time.Now().Add(s.o.drainWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		open := 0
		for _, d := range s.daemons() {
			if m, err := scrape(d.metrics); err == nil {
				open += int(math.Round(openMetric(d.name, m)))
			} else {
				open++
			}
		}
		if open == 0 {
			break
		}
		time.Sleep(time.Second) // polling another process
	}
}

// awaitProbes waits until the connections benchproc.Start made to see
// each listener up (one per listener) are counted and closed, so that the
// counters read next hold all of them.
func (s *soak) awaitProbes(ctx context.Context) {
	counted := func() bool {
		m, err := scrape(s.env.mail.metrics)
		if err != nil {
			return false
		}
		var sessions float64
		for _, p := range mailProtos {
			sessions += m.sum("pipegate_" + p + "_sessions_total")
		}
		f, err := scrape(s.env.fwd.metrics)
		return err == nil && sessions >= float64(len(mailListeners)) &&
			f.sum("pipegate_forward_connections_total") >= float64(len(forwardNames))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !counted() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // polling another process
	}
	s.awaitClosed(ctx)
}

// gcWait bounds the wait for two garbage collections after the drain:
// the Go runtime forces one every two minutes at the latest.
const gcWait = 270 * time.Second

// awaitGC waits until each daemon has run two garbage collections since
// the drain (go_gc_duration_seconds_count grew by 2: what a sync.Pool
// holds survives the first), so that the heap in use at the end is what
// is live, not garbage of the churn.
func (s *soak) awaitGC(ctx context.Context) {
	gcs := func(d *daemon) float64 {
		m, err := scrape(d.metrics)
		if err != nil {
			return -1
		}
		return m.sum("go_gc_duration_seconds_count")
	}
	before := map[string]float64{}
	for _, d := range s.daemons() {
		before[d.name] = gcs(d)
	}
	fmt.Printf("  -- drained; waiting (up to %v) for two garbage collections in each daemon\n", gcWait)
	deadline := time.Now().Add(gcWait)
	for _, d := range s.daemons() {
		for gcs(d) < before[d.name]+2 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Second) // polling another process
		}
	}
}

// checkGrowth compares a daemon's end level with its start level.
func (s *soak) checkGrowth(name string, start, end sample) {
	if end.err != "" {
		s.finding("%s: last sample failed: %s", name, end.err)
		return
	}
	if d := end.fds - start.fds; d > fdSlack {
		s.finding("%s: %d descriptors open after the drain, %d before the churn (+%d)", name, end.fds, start.fds, d)
	}
	if d := end.goroutines - start.goroutines; d > goroutineSlack {
		s.finding("%s: %d goroutines after the drain, %d before the churn (+%d)", name, end.goroutines, start.goroutines, d)
	}
	if end.open != 0 {
		s.finding("%s: its metrics count %d open after the drain, want 0", name, end.open)
	}
	// Heap: the churn's peak may stay mapped (RSS), but the heap in use
	// after the drain should be near the start's.
	if end.heapKiB > 2*start.heapKiB+8*1024 {
		s.finding("%s: heap in use %s MiB after the drain, %s MiB before the churn", name, mib(end.heapKiB), mib(start.heapKiB))
	}
}

// checkCounts compares what the daemons counted since base with what the
// churn did.
func (s *soak) checkCounts(base map[string]metrics) {
	fmt.Printf("\n== counted by the daemons (since the start) vs made by the soak ==\n")
	mail, err := scrape(s.env.mail.metrics)
	if err != nil {
		s.finding("mail metrics: %v", err)
		return
	}
	fwd, err := scrape(s.env.fwd.metrics)
	if err != nil {
		s.finding("forward metrics: %v", err)
		return
	}
	delta := func(m, b metrics, name string, labels ...string) int {
		return int(math.Round(m.sum(name, labels...) - b.sum(name, labels...)))
	}
	dials := s.tally.snapshot(s.tally.mailDials)
	loginOK := s.tally.snapshot(s.tally.loginOK)
	bad := s.tally.snapshot(s.tally.badRejected)
	goodGone := s.tally.snapshot(s.tally.goodGone)
	badGone := s.tally.snapshot(s.tally.badGone)
	fmt.Printf("  (made: seen by the soak's clients; +gone: sent, and the client left before the answer)\n")
	fmt.Printf("  %-11s %18s %24s %26s %14s %12s\n", "protocol", "sessions (dialed)", "logins ok (made+gone)", "pw failures (made+gone)", "logins failed", "unavailable")
	for _, p := range mailProtos {
		pre := "pipegate_" + p + "_"
		sess := delta(mail, base["mail"], pre+"sessions_total")
		ok := delta(mail, base["mail"], pre+"logins_total", `result="ok"`)
		pw := delta(mail, base["mail"], pre+"login_failures_total", `kind="password"`)
		failed := delta(mail, base["mail"], pre+"logins_total", `result="failed"`)
		unavail := delta(mail, base["mail"], pre+"logins_total", `result="unavailable"`)
		fmt.Printf("  %-11s %8d (%7d) %8d (%7d+%5d) %10d (%7d+%5d) %14d %12d\n", p, sess, dials[p], ok, loginOK[p], goodGone[p], pw, bad[p], badGone[p], failed, unavail)
		if sess != dials[p] {
			s.finding("mail %s: pipegate_%s_sessions_total grew by %d, the soak connected %d times", p, p, sess, dials[p])
		}
		if ok < loginOK[p] || ok > loginOK[p]+goodGone[p] {
			s.finding("mail %s: %d logins counted ok, the soak saw %d succeed (and %d left before the answer)", p, ok, loginOK[p], goodGone[p])
		}
		if pw < bad[p] || pw > bad[p]+badGone[p] {
			s.finding("mail %s: %d password failures counted, the soak saw %d refused (and %d left before the answer)", p, pw, bad[p], badGone[p])
		}
	}
	fdials := s.tally.snapshot(s.tally.fwdDials)
	fbytes := s.tally.snapshot(s.tally.fwdBytes)
	fmt.Printf("  %-11s %18s %10s %8s %26s %14s\n", "forward", "conns (dialed)", "refused", "open", "bytes to upstream (sent)", "bytes to client")
	for _, n := range forwardNames {
		l := fmt.Sprintf(`forward="%s"`, n)
		total := delta(fwd, base["forward"], "pipegate_forward_connections_total", l)
		refused := delta(fwd, base["forward"], "pipegate_forward_connections_refused_total", l)
		open := int(fwd.sum("pipegate_forward_connections_open", l))
		up := delta(fwd, base["forward"], "pipegate_forward_bytes_total", l, `direction="to_upstream"`)
		down := delta(fwd, base["forward"], "pipegate_forward_bytes_total", l, `direction="to_client"`)
		fmt.Printf("  %-11s %8d (%7d) %10d %8d %12d (%11d) %14d\n", n, total, fdials[n], refused, open, up, fbytes[n], down)
		if total != fdials[n] {
			s.finding("forward %s: pipegate_forward_connections_total grew by %d, the soak connected %d times", n, total, fdials[n])
		}
		// Every connection accepted is refused or piped, and every piped
		// one is observed in the duration histogram at its close.
		if piped := delta(fwd, base["forward"], "pipegate_forward_connection_duration_seconds_count", l); piped != total-refused {
			s.finding("forward %s: %d connections in the duration histogram, %d accepted - %d refused = %d piped", n, piped, total, refused, total-refused)
		}
		// Bytes of failed exchanges may count too (none when the churn
		// had no failure); never fewer than the whole echoes.
		if up < fbytes[n] || down < fbytes[n] {
			s.finding("forward %s: %d bytes counted to the upstream and %d to the client, the soak had %d echoed", n, up, down, fbytes[n])
		}
	}
	for _, d := range []struct {
		name string
		m    metrics
	}{{"mail", mail}, {"forward", fwd}} {
		var fb []string
		for series, v := range d.m {
			if strings.HasPrefix(series, "pipegate_engine_fallbacks_total{") && v > 0 {
				fb = append(fb, fmt.Sprintf("%s %v", strings.TrimPrefix(series, "pipegate_engine_fallbacks_total"), v))
			}
		}
		slices.Sort(fb)
		fmt.Printf("  %s: pipes handed to goroutines (pipegate_engine_fallbacks_total): %v\n", d.name, fb)
		if n := d.m.sum("pipegate_engine_pipes_open"); n != 0 {
			s.finding("%s: pipegate_engine_pipes_open is %v after the drain, want 0", d.name, n)
		}
	}
	s.mu.Lock()
	fmt.Printf("  SIGHUPs sent to each daemon: %d\n", s.reloads)
	s.mu.Unlock()
}

// stopDaemons stops both daemons: SIGTERM (a drain) with sessions and
// connections open, or SIGQUIT when a finding says goroutines or
// descriptors stayed, so that the log holds every goroutine's stack.
func (s *soak) stopDaemons() {
	s.mu.Lock()
	findings := append([]string(nil), s.findings...)
	s.mu.Unlock()
	quit := map[string]bool{}
	for _, d := range s.daemons() {
		for _, f := range findings {
			if strings.HasPrefix(f, d.name+": ") && (strings.Contains(f, "goroutines") || strings.Contains(f, "descriptors")) {
				quit[d.name] = true
			}
		}
	}
	var held []net.Conn
	if len(quit) == 0 {
		held = s.holdForStop()
	}
	fmt.Printf("\n== stop: SIGTERM with %d connections open (drain_timeout %s) ==\n", len(held), drainTimeout)
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Go(func() { io.Copy(io.Discard, c); c.Close() })
	}
	limit, _ := time.ParseDuration(drainTimeout)
	for _, d := range s.daemons() {
		wg.Go(func() {
			start := time.Now()
			if quit[d.name] {
				fmt.Printf("  %s: SIGQUIT for its goroutine stacks (in %s)\n", d.name, d.log)
				syscall.Kill(d.proc.Pgid(), syscall.SIGQUIT)
			}
			d.proc.Stop()
			took := time.Since(start)
			fmt.Printf("  %s stopped in %v\n", d.name, took.Round(time.Millisecond))
			if !quit[d.name] && took > limit+3*time.Second {
				s.finding("%s: SIGTERM took %v to stop, drain_timeout is %s", d.name, took.Round(time.Millisecond), drainTimeout)
			}
		})
	}
	wg.Wait()
}

// holdForStop opens sessions and connections that are still open when
// the daemons get SIGTERM: logged in and idle, not yet logged in, and
// forward connections after an exchange.
func (s *soak) holdForStop() []net.Conn {
	rng := rand.New(rand.NewPCG(5, 6))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.churnCtx = ctx
	var held []net.Conn
	for _, proto := range mailProtos {
		for i := range 5 {
			m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcIdle))
			if err != nil {
				s.finding("stop: %s session: %v", proto, err)
				continue
			}
			if i < 3 {
				if ok, err := m.login(randUser(rng), password, false); err != nil || !ok {
					s.finding("stop: %s login: %v (ok %v)", proto, err, ok)
				}
			}
			m.raw.SetDeadline(time.Time{})
			held = append(held, m.raw)
		}
	}
	for _, name := range forwardNames {
		for range 3 {
			c, tcp, err := s.dialForward(name, randSrc(rng, srcFwd), false)
			if err == nil {
				err = echo(c, []byte("held"))
			}
			if err != nil {
				s.finding("stop: forward %s: %v", name, err)
				continue
			}
			tcp.SetDeadline(time.Time{})
			held = append(held, c)
		}
	}
	return held
}

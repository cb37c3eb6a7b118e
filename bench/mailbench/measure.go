package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// loginRate runs n sequential login+logout cycles and returns cycles/s.
func loginRate(t target, n int, user, pass string) (float64, error) {
	start := time.Now()
	for i := range n {
		s, err := login(t, user, pass)
		if err != nil {
			return 0, fmt.Errorf("login %d: %w", i, err)
		}
		if err := s.logout(); err != nil {
			return 0, fmt.Errorf("logout %d: %w", i, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// idleMemory returns the RSS growth (KiB) of the process group pgid per
// idle logged-in session through t: it opens n sessions, measures, opens n
// more and measures again, so that lazy initialisation does not count.
// The caller gives it a fresh process: a Go heap reuses what earlier
// sessions freed, and that would hide the growth.
func idleMemory(t target, n int, user, pass string, pgid int) (float64, error) {
	sessions := make([]*session, 0, 2*n)
	defer func() {
		for _, s := range sessions {
			s.c.Close() // the process is stopped next; no need for a clean logout
		}
	}()
	var rss [2]int64
	for step := range rss {
		for i := range n {
			s, err := login(t, user, pass)
			if err != nil {
				return 0, fmt.Errorf("session %d: %w", step*n+i, err)
			}
			sessions = append(sessions, s)
		}
		time.Sleep(time.Second) // let the proxy settle (a bench, not a test)
		var err error
		if rss[step], err = groupRSS(pgid); err != nil {
			return 0, err
		}
	}
	return float64(rss[1]-rss[0]) / float64(n), nil
}

// groupRSS sums VmRSS (KiB) over the processes of a process group.
func groupRSS(pgid int) (int64, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb
			}
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("no process in group %d", pgid)
	}
	return total, nil
}

// spread is a median with the smallest and largest value.
type spread struct{ med, lo, hi float64 }

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med, s[0], s[len(s)-1]}
}

func (s spread) format(prec int) string {
	return fmt.Sprintf("%.*f (%.*f-%.*f)", prec, s.med, prec, s.lo, prec, s.hi)
}

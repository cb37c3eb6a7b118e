package benchproc

import (
	"fmt"
	"io"
	"time"
)

// settle is how long IdleRSS lets a server settle before it reads the
// RSS: a bench figure, not a synchronisation.
const settle = time.Second

// Rotate returns items in the order of round r: from item r mod
// len(items) on, then the ones before it. Over len(items) rounds every
// item runs once in every position, so the machine's noise falls on all
// alike.
func Rotate[T any](items []T, r int) []T {
	if len(items) == 0 {
		return nil
	}
	k := r % len(items)
	out := make([]T, 0, len(items))
	return append(append(out, items[k:]...), items[:k]...)
}

// Rate calls once with 0 to n-1 in a row and returns calls per second; it
// stops at the first error.
func Rate(n int, once func(i int) error) (float64, error) {
	start := time.Now()
	for i := range n {
		if err := once(i); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// LoginRate runs n sequential login-logout cycles and returns cycles per
// second: login opens a logged-in session, whose Close logs out.
func LoginRate(n int, login func() (io.Closer, error)) (float64, error) {
	return Rate(n, func(i int) error {
		s, err := login()
		if err != nil {
			return fmt.Errorf("login %d: %w", i, err)
		}
		if err := s.Close(); err != nil {
			return fmt.Errorf("logout %d: %w", i, err)
		}
		return nil
	})
}

// IdleRSS returns the RSS growth (KiB) of process group pgid per idle
// session that open opens: it opens n sessions, lets the server settle a
// second and reads the group's RSS, then opens n more and reads it again,
// so that lazy initialisation does not count. A Go server reuses the heap
// that earlier sessions freed, which hides the growth: give it a fresh
// process or sessions beyond those it has served. Every session opened is
// closed before IdleRSS returns.
func IdleRSS(pgid, n int, open func() (io.Closer, error)) (float64, error) {
	sessions := make([]io.Closer, 0, 2*n)
	defer func() {
		for _, s := range sessions {
			s.Close() // the figure is taken; how a session ends does not count
		}
	}()
	var rss [2]int64
	for step := range rss {
		for i := range n {
			s, err := open()
			if err != nil {
				return 0, fmt.Errorf("session %d: %w", step*n+i, err)
			}
			sessions = append(sessions, s)
		}
		time.Sleep(settle) // let the server settle (a bench, not a test)
		var err error
		if rss[step], err = GroupRSS(pgid); err != nil {
			return 0, err
		}
	}
	return float64(rss[1]-rss[0]) / float64(n), nil
}

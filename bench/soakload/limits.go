package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
)

// The per-address limits in the daemons' configs. After the churn, a
// burst of one more connection than the limit, from addresses the churn
// used, must see exactly the limit accepted: a slot the churn leaked (a
// session that ended without giving back its count) shows as one
// accepted less.
const (
	mailPerIPLimit = 100 // max_connections_per_ip, and the default max_prelogin_connections_per_ip
	fwdPerIPLimit  = 40  // max_conns_per_ip of every forward
)

// limitCheck bursts from a few addresses of each client range.
func (s *soak) limitCheck(rng *rand.Rand) {
	fmt.Printf("\n== per-address limits after the churn: a burst of limit+1 from addresses the churn used ==\n")
	for _, r := range []struct {
		name string
		net3 [3]byte
	}{{"good", srcGood}, {"bad", srcBad}, {"vanish", srcVanish}, {"idle", srcIdle}} {
		for range 2 {
			src := randSrc(rng, r.net3)
			ok, refused, err := s.mailBurst(src)
			fmt.Printf("  mail    from %-15s (%-6s) %3d accepted, %d refused (limit %d)%s\n", src, r.name, ok, refused, mailPerIPLimit, errText(err))
			if err != nil || ok != mailPerIPLimit || refused != 1 {
				s.finding("mail: a burst from %s (used by the %s clients) had %d of %d connections accepted, want %d: %v", src, r.name, ok, mailPerIPLimit+1, mailPerIPLimit, err)
			}
		}
	}
	for _, name := range forwardNames {
		src := randSrc(rng, srcFwd)
		ok, refused, err := s.forwardBurst(name, src)
		fmt.Printf("  forward %-8s from %-15s %3d accepted, %d refused (limit %d)%s\n", name, src, ok, refused, fwdPerIPLimit, errText(err))
		if err != nil || ok != fwdPerIPLimit || refused != 1 {
			s.finding("forward %s: a burst from %s had %d of %d connections accepted, want %d: %v", name, src, ok, fwdPerIPLimit+1, fwdPerIPLimit, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// mailBurst opens mailPerIPLimit+1 connections from src to the plain
// IMAP listener, each held until all are open, and counts the greetings
// and the refusals (* BYE).
func (s *soak) mailBurst(src net.IP) (ok, refused int, err error) {
	var open []*mconn
	defer func() {
		for _, m := range open {
			m.close()
		}
	}()
	for range mailPerIPLimit + 1 {
		m, err := s.dialMail(imapProto, noTLS, src)
		if err != nil {
			return ok, refused, err
		}
		open = append(open, m)
		l, err := m.line()
		switch {
		case err != nil:
			return ok, refused, err
		case strings.HasPrefix(l, "* OK"):
			ok++
		case strings.HasPrefix(l, "* BYE"):
			refused++
		default:
			return ok, refused, fmt.Errorf("greeting %q", strings.TrimSpace(l))
		}
	}
	return ok, refused, nil
}

// forwardBurst opens fwdPerIPLimit+1 connections from src to forward
// name, each held until all are open: one that echoes a byte is
// accepted, one that ends is refused.
func (s *soak) forwardBurst(name string, src net.IP) (ok, refused int, err error) {
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range fwdPerIPLimit + 1 {
		c, _, err := s.dialForward(name, src, false)
		if err != nil {
			if name == fwdTLS && isClosed(err) { // refused before the handshake
				refused++
				continue
			}
			return ok, refused, err
		}
		open = append(open, c)
		switch err := echo(c, []byte{'x'}); {
		case err == nil:
			s.tally.add(s.tally.fwdBytes, name, 1)
			ok++
		case isClosed(err):
			refused++
		default:
			return ok, refused, err
		}
	}
	return ok, refused, nil
}

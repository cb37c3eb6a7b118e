package gatewaytest

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/limit"
)

// LoginTally is a protocol's login counters at one moment
// (pipegate_PROTOCOL_logins_total by result, and its password failures),
// for a test to check what one login added:
//
//	before := gatewaytest.Tally(t, reg, "pop3")
//	... a login whose token the backend refuses ...
//	before.Added(t, 1, 1, 0)
type LoginTally struct {
	reg                           *prometheus.Registry
	protocol                      string
	failed, password, unavailable float64
}

// Tally reads protocol's login counters in reg.
func Tally(t testing.TB, reg *prometheus.Registry, protocol string) LoginTally {
	t.Helper()
	logins := "pipegate_" + protocol + "_logins_total"
	return LoginTally{
		reg: reg, protocol: protocol,
		failed:      Counted(t, reg, logins, "result", "failed"),
		password:    Counted(t, reg, "pipegate_"+protocol+"_login_failures_total", "kind", "password"),
		unavailable: Counted(t, reg, logins, "result", "unavailable"),
	}
}

// Added fails t unless, since b, the failed logins grew by failed, the
// password failures by password and the unavailable logins by
// unavailable.
func (b LoginTally) Added(t testing.TB, failed, password, unavailable float64) {
	t.Helper()
	now := Tally(t, b.reg, b.protocol)
	if now.failed != b.failed+failed {
		t.Errorf("failed logins counted: %v, want %v", now.failed, b.failed+failed)
	}
	if now.password != b.password+password {
		t.Errorf("password failures counted: %v, want %v", now.password, b.password+password)
	}
	if now.unavailable != b.unavailable+unavailable {
		t.Errorf("unavailable logins counted: %v, want %v", now.unavailable, b.unavailable+unavailable)
	}
}

// Penalised fails t unless store counts want failed logins for the
// client address ip (the penalty's key for an IPv4 address).
func Penalised(t testing.TB, store limit.PenaltyStore, ip string, want int64) {
	t.Helper()
	if n, err := store.Failures(context.Background(), "ip:"+ip+"/32"); n != want || err != nil {
		t.Errorf("penalty count of %s: %d, %v; want %d", ip, n, err, want)
	}
}

// WaitSession waits for the session line of the client at address src
// (IP only) and fails t unless it names account.
func (l *Logs) WaitSession(t testing.TB, src, account string) {
	t.Helper()
	l.Wait(t, "client="+src+":")
	if !regexp.MustCompile(`client=` + regexp.QuoteMeta(src) + `:\d+ account=` + regexp.QuoteMeta(account) + ` `).MatchString(l.String()) {
		t.Errorf("the gateway's session line for %s does not name account %s", src, account)
	}
}

// WantLocal is the local address a test expects a session to have: gw,
// the gateway's listening address, when local is ""; else local, in
// which ":port" stands for gw's port (a proxy in front that named an
// address without a port leaves the connection's).
func WantLocal(gw netip.AddrPort, local string) netip.AddrPort {
	if local == "" {
		return gw
	}
	return netip.MustParseAddrPort(strings.Replace(local, ":port", ":"+strconv.Itoa(int(gw.Port())), 1))
}

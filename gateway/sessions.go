package gateway

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// SessionInfo is a logged-in session in the pipe, as Server.Sessions
// lists it (Dovecot's `doveadm proxy list`). It holds no secret.
type SessionInfo struct {
	// ID is the session's ID, as its log lines say (session=...).
	ID string `json:"id"`
	// Protocol is the Protocol's Name: "imap", "pop3", "sieve", "submission".
	Protocol string `json:"protocol"`
	// Account is the account the session logged in as, as its log line
	// says (the name the gateway decided: AccountRules, master users).
	// BackendAccount is the name the backend logged in as instead, when
	// a route source gave another (Route.Login: nginx's Auth-User,
	// Dovecot's destuser); "" when it is Account. Kick matches either.
	Account        string `json:"account"`
	BackendAccount string `json:"backend_account,omitempty"`
	// Client is the client's address (the one PROXY or XCLIENT named, if
	// any), Backend the backend's host:port.
	Client     string `json:"client"`
	Backend    string `json:"backend"`
	ClientTLS  bool   `json:"client_tls"`
	BackendTLS bool   `json:"backend_tls"`
	// Pool is the pool the backend was assigned from ("" for a plain
	// backend).
	Pool string `json:"pool,omitempty"`
	// Since is when the client connected; zero when not known (a session
	// carried over by a binary upgrade from a version that did not pass it
	// on).
	Since time.Time `json:"since,omitzero"`
}

// Of reports whether the session is account's: its Account or its
// BackendAccount, byte for byte ("" is nobody's), as Kick matches.
func (a SessionInfo) Of(account string) bool {
	return account != "" && (a.Account == account || a.BackendAccount == account)
}

// Compare orders sessions by account, then by Since (oldest first), then
// by ID: the order of Sessions, and of a list merged from several Servers.
func (a SessionInfo) Compare(b SessionInfo) int {
	return cmp.Or(
		cmp.Compare(a.Account, b.Account),
		a.Since.Compare(b.Since),
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Protocol, b.Protocol),
	)
}

// TextKicked is the farewell of a session an administrator ended (Kick).
const TextKicked = "Session ended by the administrator, please reconnect"

// errAdminKick is the cause a kicked session's log line gives: "kicked: by
// the administrator".
var errAdminKick = errors.New("by the administrator")

// Sessions lists the logged-in sessions whose pipe runs on s now, in the
// order of SessionInfo.Compare. A session that is ending may still be
// listed; one whose login is still in progress is not yet. Sessions that
// went to another process in a binary upgrade are that process's.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	out := make([]SessionInfo, 0, len(s.pipedSessions))
	for _, ps := range s.pipedSessions {
		if ps.h == nil { // not piping yet (Handover, Adopt), or never will
			continue
		}
		e := ps.entry
		out = append(out, SessionInfo{
			ID: ps.id, Protocol: e.protocol, Account: e.account, BackendAccount: e.backendAccount, Client: e.client, Backend: e.backend,
			ClientTLS: e.clientTLS, BackendTLS: e.backendTLS, Pool: ps.pool, Since: e.start,
		})
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, SessionInfo.Compare)
	return out
}

// Kick ends every piped session of account on s (Dovecot's `doveadm
// proxy kick`), each at a clean point: what the backend had sent reaches
// the client, then the protocol's farewell with TextKicked (IMAP "* BYE
// ...", ManageSieve BYE, SMTP 421; POP3 has none and just closes), then
// both connections close. The session's log line, written once as it
// ends, says "kicked: by the administrator". account must be the
// session's, byte for byte (SessionInfo.Account, the account in its log
// line), or the name its backend logged in as (BackendAccount); ""
// matches none.
//
// It returns how many sessions it ended; Kick does not wait for them to
// close. A session ending by itself at that moment may be counted, and
// keeps its own reason. A session leaving for another process in a
// binary upgrade is ended there if its pipe had left when the kick came
// (the kick goes along with it, see SessionState.Kicked); one whose state
// was being sent is passed by and not counted: it goes on in the other
// process, whose Kick ends it. Logins still
// in progress are not ended: one that was routed before a route change
// may still reach the old backend after the kick, so list again
// (Sessions) and kick again if it shows.
func (s *Server) Kick(account string) int {
	if account == "" {
		return 0
	}
	cause := errAdminKick
	s.mu.Lock()
	var hs []*pipe.Handle
	for _, ps := range s.pipedSessions {
		if ps.h == nil || ps.leaving || !ps.entry.is(account) {
			continue
		}
		// Read by ended (and by Leaving, for a pipe that left already), the pipe's Result saying ReasonStopped; a
		// pool's kick that came first keeps its cause.
		ps.kick.CompareAndSwap(nil, &cause)
		hs = append(hs, ps.h)
	}
	s.mu.Unlock()
	if len(hs) == 0 {
		return 0
	}
	// Outside s.mu: the session's end (ended) takes it. Stop does not
	// wait for the end, and does nothing once the pipe has ended.
	farewell := s.farewell(TextKicked)
	for _, h := range hs {
		h.Stop(farewell)
	}
	s.logger().Info(s.name()+": kicked by the administrator", "account", account, "sessions", len(hs))
	return len(hs)
}

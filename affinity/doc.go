// Package affinity keeps each user of a pool of shared-storage backends
// on one member at a time, for any number of stateless gateway instances
// that share a Redis: what Dovecot's Director did, with bounded loads.
//
// A user without a live assignment gets a member by consistent hashing
// with bounded loads (Ring); the assignment is written atomically in
// Redis, held while the user has a session on any instance and for
// Config.Expire after the last one ends. Moves kick the user's sessions on
// every instance before the new member is used. When Redis cannot be
// asked, Assign fails: the gateway answers UNAVAILABLE, never guesses.
//
// How the gateway uses it around a login:
//
//	aff, err := affinity.New(affinity.Config{Client: rdb, Pool: "shared", Members: members})
//	if err != nil {
//		return err // names the field at fault
//	}
//	go aff.Subscribe(ctx, nil) // heartbeat, sweeping, kicks; for the process's life
//
//	// per login, once the account name is known:
//	member, lease, err := aff.Assign(ctx, user)
//	if err != nil {
//		return unavailable() // NO [UNAVAILABLE]: Redis down, user moving, no member
//	}
//	defer aff.SessionEnd(context.Background(), lease) // after close, always
//	backend := dial(member) // and log in
//	if err := aff.SessionStart(ctx, lease); err != nil {
//		return closeSession() // assignment changed meanwhile: never two members
//	}
//	select { // while piping
//	case <-lease.Kicked(): // a move: close with the protocol's goodbye (IMAP BYE)
//	case <-sessionDone:
//	}
//
// # Shared state
//
// Keys live under {Prefix}{Pool}: (the pool is a Cluster hash tag): u:USER
// (a hash: m member, v/t a running move, s:INSTANCE session counts,
// p:LEASE the deadline of a login in progress, which holds the member as a
// session does until SessionStart or SessionEnd, or Config.Lease), inst
// (a sorted set: instance → heartbeat deadline), ix:INSTANCE (the users an
// instance holds sessions of), load:INSTANCE (its sessions by member),
// weight and down (shared drains and health), epoch (when the data was
// created, for the warm-up after a loss) and kicks (a stream). Every write
// is a Lua script (scripts.go) using Redis's clock. The health checks keep
// hl:MEMBER (whose turn it is to probe) and hc:MEMBER (consecutive counts);
// nusers caches the count of active users for the metrics.
//
// # Operations
//
// RunHealth checks the members with a probe the gateway supplies, shared
// by the instances and with hysteresis (health.go); Collector exports the
// pool's metrics (metrics.go); Handler serves the admin API for moves,
// drains and evacuations that `pipegate ctl` calls (http.go). The operator
// page is docs/affinity.md.
package affinity

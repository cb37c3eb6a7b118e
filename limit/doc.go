// Package limit holds the per-client protections shared by pipegate's
// daemons: connection limits (in total and per client address) and the
// auth-failure penalty, a delay that grows with each failed login from an
// address.
//
// Connection limits:
//
//	conns := limit.NewConns(1000, 20) // 0 means unlimited
//	release, err := conns.Acquire(client.Addr())
//	if err != nil {
//		var ex *limit.Exceeded // ex.Limit is "total" or "per-ip"
//		errors.As(err, &ex)
//		conn.Close()
//		return
//	}
//	defer release()
//
// Auth-failure penalty, shared by several instances through Redis:
//
//	store, closeStore := limit.NewRedisPenaltyStore(&redis.Options{Addr: "10.0.0.20:6379"}, "")
//	defer closeStore()
//	p := &limit.Penalty{Store: store} // or limit.NewRedisStore(rdb, prefix) on a client of your own
//	if err := p.Wait(ctx, client.Addr()); err != nil { // sleeps Delay(ctx, ip)
//		return err
//	}
//	if loginOK {
//		p.Success(ctx, client.Addr())
//	} else {
//		p.Fail(ctx, client.Addr())
//	}
//
// Client addresses are grouped before counting: IPv4 addresses (and
// IPv4-mapped IPv6) count one by one, IPv6 addresses by their /64 prefix,
// the block one host or one customer usually owns. Connections without an
// IP address (Unix sockets) share one bucket.
package limit

import (
	"net/netip"
)

// Key returns the group a client address is counted in: the address
// itself for IPv4, its /64 prefix for IPv6, the zero Prefix for an invalid
// (unknown) address.
func Key(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64) // cannot fail for a valid IPv6 address
	return p
}

// keyString is Key as a store key: "ip:192.0.2.1/32", "ip:2001:db8::/64",
// "ip:unknown".
func keyString(ip netip.Addr) string {
	k := Key(ip)
	if !k.IsValid() {
		return "ip:unknown"
	}
	return "ip:" + k.String()
}

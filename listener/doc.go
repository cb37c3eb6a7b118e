// Package listener holds what pipegate's daemons do with a connection
// before their protocol starts: taking the client address from a PROXY
// protocol header (v1 or v2) sent by a trusted load balancer, and writing
// such headers towards an upstream.
//
// Usage, in the goroutine that serves one accepted connection (never in the
// accept loop: a slow peer must not stall other accepts):
//
//	trusted, err := listener.ParseCIDRs("trusted_proxies", cfg.TrustedProxies)
//	if err != nil {
//		return err // "trusted_proxies[2]: ..."
//	}
//	policy := &listener.ProxyPolicy{Trusted: trusted, Required: true}
//	...
//	func serve(raw net.Conn) {
//		conn, client, local, err := policy.Handshake(raw)
//		if err != nil {
//			log.Warn("bad PROXY header", "err", err)
//			raw.Close()
//			return
//		}
//		// conn is raw, or a *pipe.PrefixConn replaying bytes read past
//		// the header; client is the address to log, limit and route by.
//	}
//
// Towards an upstream:
//
//	err := listener.WriteHeader(upstream, "v2", client, local)
package listener

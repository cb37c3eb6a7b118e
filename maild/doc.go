// Package maild is pipegate's mail daemon, `pipegate mail` and `pipegate
// imap`: it reads the mail config file (docs/mail.md, docs/imap.md), loads
// the certificates, routes and penalty store it names, and runs a
// protocol server (package imap, pop3, sieve or submission, over package
// gateway) on each listener, all sharing one pipe.Engine, the connection
// limits and the penalty; it serves /metrics, /healthz, the affinity API
// (/affinity...) and the session API (GET /sessions, POST
// /sessions/kick: list and end this instance's logged-in sessions) on
// metrics_addr, reloads routes and certificates, and drains on the way
// out.
//
// Usage:
//
//	s, err := maild.Load("/etc/pipegate/mail.yaml", maild.CommandMail, protocols)
//	if err != nil {
//		return err // "mail.yaml:9: listen[3].protocol: \"gopher\": unknown protocol ..."
//	}
//	d, err := maild.New(s, log) // certificates, routes, penalty store
//	if err != nil {
//		return err
//	}
//	defer d.Close()
//	// on SIGHUP, from another goroutine: d.Reload()
//	return d.Run(ctx) // listens, serves until ctx ends, drains within drain_timeout
//
// The protocols are a table that the command wires (cmd/pipegate's
// mail_protocols.go): a name, how to make its server from the Settings,
// and its metrics. The daemon imports no protocol itself: it fills the
// shared gateway.Server fields of each.
package maild

// Package imap is pipegate's IMAP reverse proxy. It speaks the pre-login
// part of IMAP with the client (greeting, CAPABILITY, STARTTLS, ID, LOGIN,
// AUTHENTICATE), asks a route.Router which backends hold the account, logs
// in to the first one that answers, and then hands both connections to the
// pipe core, never parsing again.
//
// Usage:
//
//	srv := &imap.Server{Server: gateway.Server{
//		Router:     router,             // a route.Router: file, LDAP, SQL, ...
//		TLSConfig:  tlsServer.Config(), // for STARTTLS and port 993
//		BackendTLS: &tls.Config{RootCAs: backendCA},
//		Penalty:    &limit.Penalty{},
//		Engine:     engine,             // shut down by its maker, after srv.Shutdown
//		Metrics:    imap.NewMetrics(prometheus.DefaultRegisterer),
//	}}
//	l143, _ := net.Listen("tcp", ":143")
//	l993, _ := net.Listen("tcp", ":993")
//	go srv.Serve(l143, false) // plain, STARTTLS offered
//	go srv.Serve(l993, true)  // implicit TLS
//	...
//	srv.SetRouter(newRouter) // on SIGHUP
//	srv.Shutdown(ctx)        // on SIGTERM
//
// Everything that is not IMAP's own (listeners, TLS, limits, penalty, the
// account rules, routing, backend dial and failover, the hand-over to the
// pipe, Shutdown, the session log line, metrics) is package gateway's:
// Server embeds a gateway.Server and is its Protocol.
//
// Before login the proxy answers CAPABILITY, NOOP, LOGOUT, STARTTLS, ID,
// LOGIN and AUTHENTICATE (PLAIN, LOGIN, and with Server.OAuth XOAUTH2 and
// OAUTHBEARER) itself; anything else gets a tagged BAD. Towards a backend
// it reads the greeting, runs STARTTLS if the route says so, sends ID with
// the client's address (x-originating-ip and friends, which Dovecot trusts
// from login_trusted_networks) and x-proxy-ttl (see DefaultProxyTTL) when
// the backend advertises ID, then LOGIN (or AUTHENTICATE PLAIN when the
// backend has LOGINDISABLED). ID and the login command go in one write,
// saving a round trip, unless the login needs a synchronizing literal
// (no LITERAL+) or AUTHENTICATE lacks SASL-IR. When the greeting (or TLS
// after STARTTLS) leaves the capabilities unknown, CAPABILITY is asked
// first, alone. STARTTLS is never pipelined. The client gets the
// backend's tagged answer with its own tag and, on OK, the backend's
// post-login capabilities.
//
// The client dialogue is in conn.go (greeting, the command loop) and one
// file per command (capability.go, starttls.go, id.go, login.go,
// authenticate.go, ...); respond.go renders a gateway.Error as the tagged
// NO in one place. The backend side is in backend.go (greeting, STARTTLS,
// ID with the client's address) and backend_login.go. The byte-level codec
// is imap/wire.
package imap

// Package sieve is pipegate's ManageSieve reverse proxy (RFC 5804). It
// speaks the part of ManageSieve before login with the client (the
// capability greeting, CAPABILITY, NOOP, LOGOUT, STARTTLS, AUTHENTICATE),
// asks a route.Router which backends hold the account, logs in to the
// first one that answers, and then hands both connections to the pipe
// core, never parsing again.
//
// Usage:
//
//	srv := &sieve.Server{Server: gateway.Server{
//		Router:     router,             // a route.Router with sieve:// or sieve+starttls:// backends
//		TLSConfig:  tlsServer.Config(), // for STARTTLS
//		BackendTLS: &tls.Config{RootCAs: backendCA},
//		Penalty:    &limit.Penalty{},
//		Engine:     engine, // shut down by its maker, after srv.Shutdown
//		Metrics:    sieve.NewMetrics(prometheus.DefaultRegisterer),
//	}}
//	l4190, _ := net.Listen("tcp", ":4190")
//	go srv.Serve(l4190, false) // plain, STARTTLS offered
//	...
//	srv.Shutdown(ctx)
//
// Importing the package registers the backend URL schemes sieve://HOST
// and sieve+starttls://HOST (port 4190) with route.RegisterScheme; the
// client's address is passed by XCLIENT (client_addr=xclient, the
// default), by a PROXY header (client_addr=proxy) or not at all
// (client_addr=none).
//
// Everything that is not ManageSieve's own (listeners, TLS, limits,
// penalty, the account rules, routing, backend dial and failover, the
// hand-over to the pipe, Shutdown, the session log line, metrics) is
// package gateway's: Server embeds a gateway.Server and is its Protocol.
//
// A login through the proxy reads, client side (C) and towards a Dovecot
// backend (B):
//
//	S: "IMPLEMENTATION" "pipegate"
//	S: "SASL" "PLAIN LOGIN"                  ("" on a plain link without AllowPlaintextAuth)
//	S: "SIEVE" "fileinto reject ..."         (Server.Capabilities)
//	S: "NOTIFY" "mailto"
//	S: "STARTTLS"
//	S: "VERSION" "1.0"
//	S: OK "pipegate ManageSieve proxy ready"
//	C: AUTHENTICATE "PLAIN" "AGFsaWNlQGEudGVzdABzZWNyZXQ="
//	   B: (capability greeting ... OK)
//	   P: STARTTLS, then the capabilities again  (sieve+starttls:// only)
//	   P: XCLIENT ADDR=192.0.2.7 PORT=51234 SESSION=<id> TTL=4
//	   B: OK "Updated"
//	   P: AUTHENTICATE "PLAIN" "AGFsaWNlQGEudGVzdABzZWNyZXQ="
//	   B: OK "Logged in."
//	S: OK "Logged in."
//	(from here on the pipe: CAPABILITY, PUTSCRIPT, ... are the backend's)
//
// AUTHENTICATE takes PLAIN and LOGIN (and XOAUTH2 and OAUTHBEARER with
// gateway.Server.OAuth), the initial response as a quoted string or a
// literal ({n+}), challenges as strings on their own lines, the client's
// answers as strings, "*" to cancel. Failed logins answer NO (with
// TRYLATER when no backend could take the login, ENCRYPT-NEEDED on a
// plain link), BYE after too many. Other commands before login get NO.
// After STARTTLS the capabilities are sent again, unasked (RFC 5804
// section 2.2), and bytes pipelined behind STARTTLS are never executed.
//
// A proxy in front whose address is in Server.TrustedNetworks (another
// pipegate, a Dovecot proxy) finds "XCLIENT" in the capabilities and may
// send Pigeonhole's "XCLIENT ADDR=... PORT=... SESSION=... TTL=...",
// answered OK "Updated": ADDR and PORT go on to the backend in place of
// the proxy's address, and TTL can only lower the session's proxy TTL (a
// login that arrives with TTL 1 is refused as unavailable: a loop of
// proxies ends; see gateway.DefaultProxyTTL). From any other address
// XCLIENT is an unknown command, as before.
//
// The client dialogue is in conn.go (greeting, the command loop) and one
// file per command (capability.go, noop.go, logout.go, starttls.go,
// authenticate.go, xclient.go); respond.go renders a gateway.Error as NO in one place.
// The backend side is in backend.go (greeting, STARTTLS, XCLIENT) and
// backend_login.go. The byte-level codec is sieve/wire.
package sieve

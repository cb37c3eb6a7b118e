// Package pop3 is pipegate's POP3 reverse proxy (RFC 1939, RFC 2449 CAPA
// and response codes, RFC 2595 STLS, RFC 5034 SASL). It speaks the
// pre-login part of POP3 with the client (greeting, CAPA, STLS, USER and
// PASS, AUTH, QUIT), asks a route.Router which backends hold the account,
// logs in to the first one that answers, and then hands both connections
// to the pipe core, never parsing again.
//
// Usage:
//
//	srv := &pop3.Server{Server: gateway.Server{
//		Router:     router,             // a route.Router: file, LDAP, SQL, ...
//		TLSConfig:  tlsServer.Config(), // for STLS and port 995
//		BackendTLS: &tls.Config{RootCAs: backendCA},
//		Penalty:    &limit.Penalty{},
//		Engine:     engine,             // shut down by its maker, after srv.Shutdown
//		Metrics:    pop3.NewMetrics(prometheus.DefaultRegisterer),
//	}}
//	l110, _ := net.Listen("tcp", ":110")
//	l995, _ := net.Listen("tcp", ":995")
//	go srv.Serve(l110, false) // plain, STLS offered
//	go srv.Serve(l995, true)  // implicit TLS
//	...
//	srv.Shutdown(ctx) // on SIGTERM
//
// with routes naming POP3 backends by URL: pop3://host (port 110),
// pop3+starttls://host (STLS to the backend) or pop3s://host (port 995);
// the client's address goes by XCLIENT unless the URL says
// client_addr=proxy (a PROXY header) or client_addr=none. Importing the
// package registers these schemes with package route.
//
// Everything that is not POP3's own (listeners, TLS, limits, penalty, the
// account rules, routing, backend dial and failover, the hand-over to the
// pipe, Shutdown, the session log line, metrics) is package gateway's:
// Server embeds a gateway.Server and is its Protocol.
//
// A login through the proxy (C: client, P: proxy, B: backend, Dovecot
// trusting the proxy's address), on a link where the proxy allows
// plaintext logins (AllowPlaintextAuth, or after STLS, or on port 995;
// otherwise CAPA lists neither USER nor SASL and USER is refused):
//
//	P->C: +OK pipegate POP3 proxy ready.
//	C->P: CAPA
//	P->C: +OK Capability list follows / USER / SASL PLAIN LOGIN / STLS / RESP-CODES / AUTH-RESP-CODE / PIPELINING / .
//	C->P: USER alice@a.test
//	P->C: +OK Send the password
//	C->P: PASS secret
//	      B->P: +OK [XCLIENT] Dovecot (Debian) ready.
//	      P->B: CAPA
//	      B->P: +OK / CAPA / TOP / UIDL / RESP-CODES / PIPELINING / AUTH-RESP-CODE / STLS / USER / SASL PLAIN LOGIN / .
//	      P->B: XCLIENT ADDR=192.0.2.7 PORT=51234 SESSION=5f0c... TTL=4
//	      B->P: +OK Updated
//	      P->B: AUTH PLAIN AGFsaWNlQGEudGVzdABzZWNyZXQ=
//	      B->P: +OK Logged in.
//	P->C: +OK Logged in.
//	C->B: STAT ... (piped)
//
// Before login the proxy answers CAPA (its own capabilities: USER and SASL
// only where a login may be tried, STLS when it can be started,
// RESP-CODES, AUTH-RESP-CODE, PIPELINING, and Server.Capabilities), STLS,
// USER, PASS (the rest of the line, spaces included; only right after a
// successful USER, as RFC 1939 has it: any command between them forgets
// the name), AUTH (PLAIN, LOGIN,
// and with Server.OAuth XOAUTH2 and OAUTHBEARER; an initial response or
// "+ " continuations; "*" cancels; AUTH alone lists the mechanisms) and
// QUIT; anything else gets -ERR. APOP is not offered: the proxy never
// holds the clear password a source would have to give. On a plain link
// without AllowPlaintextAuth, USER, PASS and AUTH are refused with
// "-ERR [AUTH] Plaintext authentication disallowed on non-secure
// connections". A failed login is "-ERR [AUTH] text", an unavailable
// backend "-ERR [SYS/TEMP] text", and a backend's or route source's own
// [IN-USE], [LOGIN-DELAY] or [SYS/PERM] is relayed; after
// Server.MaxLoginFailures the connection is closed. Bytes pipelined after
// STLS go into the TLS handshake, never executed; an over-long line is
// answered at once and the connection closed.
//
// Towards a backend it reads the greeting, runs STLS if the route says so,
// asks CAPA, sends XCLIENT (ADDR, PORT, SESSION, TTL) when the route asks
// for it and the greeting says [XCLIENT] or CAPA lists XCLIENT, then logs
// in with AUTH PLAIN and an initial response when CAPA lists SASL PLAIN,
// else USER and PASS; XOAUTH2 and OAUTHBEARER go as AUTH with the message
// rebuilt around the decided name, their challenges relayed to the
// client. XCLIENT's answer is read before the login is sent (as Dovecot's
// own proxy does; pipelined, each login waited ~40 ms for a delayed ACK);
// with PIPELINING, USER and PASS go in one write. The client gets the backend's +OK; a CAPA after login is the backend's.
//
// A proxy in front whose address is in Server.TrustedNetworks (another
// pipegate, a Dovecot proxy) is greeted with "+OK [XCLIENT] ..." and may
// send Dovecot's "XCLIENT ADDR=... PORT=... SESSION=... TTL=...", answered
// "+OK Updated": ADDR and PORT go on to the backend in place of the
// proxy's address, and TTL can only lower the session's proxy TTL (a login
// that arrives with TTL 1 is refused as unavailable: a loop of proxies
// ends; see gateway.DefaultProxyTTL). From any other address XCLIENT is an
// invalid keyword, as before.
//
// The client dialogue is in conn.go (greeting, the command loop) and one
// file per command (capa.go, stls.go, login.go for USER and PASS, auth.go,
// quit.go, xclient.go); respond.go renders a gateway.Error as -ERR in one place. The
// backend side is in backend.go (greeting, STLS, CAPA, XCLIENT) and
// backend_login.go. The byte-level codec is pop3/wire.
package pop3

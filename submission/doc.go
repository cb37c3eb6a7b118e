// Package submission is pipegate's mail submission proxy (RFC 6409 on
// ports 587 with STARTTLS and 465 with implicit TLS, RFC 8314). It speaks
// SMTP with the client until AUTH (greeting, EHLO/HELO, STARTTLS, AUTH,
// NOOP, RSET, QUIT), asks a route.Router which backends hold the account,
// logs in to the first one that answers, and then hands both connections
// to the pipe core, never parsing again.
//
// Usage:
//
//	srv := &submission.Server{Server: gateway.Server{
//		Router:     router,             // a route.Router naming submission:// backends
//		TLSConfig:  tlsServer.Config(), // for STARTTLS and port 465
//		BackendTLS: &tls.Config{RootCAs: backendCA},
//		Hostname:   "smtp.example.org", // greeting and EHLO
//		Penalty:    &limit.Penalty{},
//		Engine:     engine,             // shut down by its maker, after srv.Shutdown
//		Metrics:    submission.NewMetrics(prometheus.DefaultRegisterer),
//	}}
//	l587, _ := net.Listen("tcp", ":587")
//	l465, _ := net.Listen("tcp", ":465")
//	go srv.Serve(l587, false) // plain, STARTTLS offered
//	go srv.Serve(l465, true)  // implicit TLS
//	...
//	srv.Shutdown(ctx)
//
// Routes name backends as submission://host:port (plain, port 587),
// submission+starttls://host:port and submissions://host:port (implicit
// TLS, port 465); importing the package registers these schemes with
// package route. The client's address goes to the backend by XCLIENT
// (client_addr=xclient, the default: Dovecot and Postfix take it from
// their trusted networks), by a PROXY header (client_addr=proxy,
// proxy=v1|v2) or not at all
// (client_addr=none). A backend with login=xclient (nginx's xclient on,
// proxy_smtp_auth off) is not logged in to: the account goes as LOGIN=
// in the same XCLIENT as the client's address, since Postfix checks its
// smtpd_authorized_xclient_hosts again against the address an XCLIENT
// gave, and refuses a second XCLIENT.
//
// A session before AUTH, as the proxy answers it (C: client, S: proxy):
//
//	S: 220 smtp.example.org ESMTP pipegate
//	C: EHLO client.example
//	S: 250-smtp.example.org
//	S: 250-PIPELINING
//	S: 250-ENHANCEDSTATUSCODES
//	S: 250 STARTTLS                       (no AUTH on a plain link, see below)
//	C: MAIL FROM:<alice@example.org>
//	S: 530 5.7.0 Authentication required
//	C: STARTTLS
//	S: 220 2.0.0 Ready to start TLS       (bytes pipelined behind STARTTLS go to the
//	                                       TLS handshake, never run as commands)
//	C: EHLO client.example                (required again after TLS)
//	S: 250-smtp.example.org ... 250 AUTH PLAIN LOGIN
//	C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==
//	   ... the proxy logs in at the backend: 220, EHLO, [STARTTLS, EHLO],
//	   XCLIENT ADDR= PORT= HELO= PROTO=ESMTP SESSION= TTL=, 220, EHLO <client's
//	   name>, AUTH PLAIN, 235 ...
//	S: 235 2.7.0 Logged in.               (the backend's text)
//	   ... from here on the client talks to the backend: MAIL, RCPT, DATA,
//	   and a later EHLO is answered by the backend, with its capabilities.
//
// Failures are rendered in one place (respond.go): a refused login is
// "535 5.7.8 Authentication credentials invalid" whatever the cause (wrong
// password, unknown account, a domain no route serves), after the
// gateway's failure delay; no backend able to take the login is "454
// 4.7.0 Temporary authentication failure"; AUTH on a plain link without
// gateway.Server.AllowPlaintextAuth is "538 5.7.11 Encryption required for
// requested authentication mechanism" (and EHLO lists no AUTH there);
// after gateway.Server.MaxLoginFailures failures the proxy says "421
// 4.7.0" and closes, as it does after a route source's 421. "*" cancels an
// AUTH exchange: "501 5.0.0". Before AUTH, MAIL, RCPT, DATA, BURL, VRFY,
// EXPN and ETRN get "530 5.7.0 Authentication required" (the backend
// answers them after it), and an EHLO name over 255 octets reaches the
// backend as XCLIENT HELO=[UNAVAILABLE].
//
// EHLO before AUTH lists only what holds before AUTH and through the pipe
// after it: PIPELINING, ENHANCEDSTATUSCODES, STARTTLS while possible, AUTH
// while allowed, and Server.Extensions (SIZE, 8BITMIME, ... that every
// backend supports). SMTP clients rarely say EHLO again after AUTH, so
// whatever is advertised here they use with the backend.
//
// A proxy in front whose address is in Server.TrustedNetworks (another
// pipegate, a Dovecot proxy) finds XCLIENT in the EHLO reply and may send
// XCLIENT as Postfix's XCLIENT_README has it (with Dovecot's SESSION and
// TTL): the session then starts again with a 220 greeting, ADDR and PORT
// go on to the backend in place of the proxy's address, and TTL can only
// lower the session's proxy TTL (a login that arrives with TTL 1 is
// refused as unavailable: a loop of proxies ends; see
// gateway.DefaultProxyTTL). From any other address XCLIENT is "502 5.5.1
// Command not implemented", as before.
//
// Everything that is not SMTP's own (listeners, TLS, limits, penalty, the
// account rules, routing, backend dial and failover, the hand-over to the
// pipe, Shutdown, the session log line, metrics) is package gateway's:
// Server embeds a gateway.Server and is its Protocol. The client dialogue
// is in conn.go and one file per command (hello.go, starttls.go,
// auth.go, xclient.go); the backend side in backend.go (greeting, EHLO, STARTTLS,
// XCLIENT) and backend_login.go (AUTH). The SMTP codec is
// submission/wire.
package submission

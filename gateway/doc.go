// Package gateway holds what every mail protocol of pipegate shares, so
// that a rule about accounts, limits or TLS is written once and holds for
// IMAP and every protocol after it: listeners, implicit TLS and STARTTLS,
// the PROXY header in, connection limits, the login timeout, the penalty,
// the account name decided once (AccountRules, over the SASL decoding of
// gateway/sasl), route lookup, backend dial with failover and the PROXY
// header out, the hand-over to the pipe, the session registry, Shutdown,
// one log line per session and the metrics.
//
// A protocol supplies only its dialogue, behind the Protocol interface (as
// nginx's ngx_mail_protocol_t): Serve speaks with the client and calls
// back into its Session; the BackendLogin it hands to Session.Login speaks
// with each backend tried. Packages imap, pop3, sieve and submission are
// the protocols; a short version of package pop3's dialogue reads:
//
//	func (pop3) Name() string { return "pop3" }
//
//	func (pop3) Refuse(s *gateway.Session, e *gateway.Error) {
//		s.Writer().WriteString("-ERR [SYS/TEMP] " + e.Text + "\r\n")
//	}
//
//	func (pop3) Serve(s *gateway.Session) {
//		// greeting, then per command line read from s.Reader():
//		// STLS:  "+OK Begin TLS", s.Flush(), s.StartTLS()
//		// PASS:
//		started := time.Now()
//		var greeting string
//		b, err := s.Login(sasl.Credentials{Authcid: user, Password: pass}, "login", started,
//			func(b *gateway.Backend, lg gateway.Login, rt route.Route) error {
//				// read "+OK" from b.Reader(), STLS + b.StartTLS() when
//				// b.Route.TLS says so, XCLIENT when b.Route.ClientAddr says
//				// so, USER/PASS; "-ERR [AUTH] ..." becomes
//				// &gateway.Error{Code: gateway.CodeAuthFailed, Text: ..., Detail: "AUTH"}
//				return nil
//			})
//		var e *gateway.Error
//		switch {
//		case errors.As(err, &e): // render -ERR [AUTH] / [SYS/TEMP] e.Text; if s.TooManyFailures(), goodbye
//		case err != nil: // gateway.ErrSessionEnded: nothing more to say
//			return
//		default:
//			s.Writer().WriteString("+OK Logged in\r\n")
//			s.Flush()
//			s.Handover(b) // the client's and the backend's buffered bytes go along
//			return
//		}
//	}
//
// and a daemon runs it as
//
//	srv := &gateway.Server{Protocol: pop3{}, Router: router, TLSConfig: cfg, Engine: engine,
//		Metrics: gateway.NewMetrics(reg, "pop3")}
//	go srv.Serve(l110, false) // STLS offered
//	go srv.Serve(l995, true)  // implicit TLS
//	...
//	srv.Shutdown(ctx)
//	engine.Shutdown(ctx) // the Engine's maker stops what Shutdown left
//
// The account name is decided here, from the decoded credentials, and that
// one byte string is routed, given to the route source, counted by the
// penalty and limits, logged, and sent to the backend:
//
//	rules := gateway.AccountRules{Format: gateway.FormatLowercase}
//	login, err := rules.Decide(creds) // creds from sasl.Decode or a protocol's own LOGIN/USER+PASS
//
// Failures answers every failed login on one schedule, whatever its cause,
// so that timing tells a wrong password, an unknown account and a domain no
// route serves apart no better than the texts do. Answers to the client
// are values (Error, with a protocol-neutral Code) that each protocol
// renders in one place.
package gateway

package tests

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// Helpers of upgrade_protocols_test.go: sessions of POP3, ManageSieve
// and submission through `pipegate mail` (over upgClient, which counts
// the bytes), and the daemon with a listener of each in front of one
// Dovecot serving all three.

// upgProto is how a client of one protocol talks: what ends an answer,
// how it logs in, how it ends the session.
type upgProto struct {
	name     string                 // as logged: "<name> session"; the listener's protocol
	service  string                 // Dovecot's login service: "<service>-login: Info: Login:"
	greeting string                 // the prefix of the greeting's last line
	final    func(line string) bool // whether line ends an answer
	quit     string                 // the command that ends a session ...
	bye      string                 // ... and the prefix of its answer
}

var (
	upgPOP3 = upgProto{name: "pop3", service: "pop3", greeting: "+OK",
		final: func(string) bool { return true }, quit: "QUIT", bye: "+OK"}
	upgSieve = upgProto{name: "sieve", service: "managesieve", greeting: "OK",
		final: func(l string) bool {
			return strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE")
		}, quit: "LOGOUT", bye: "OK"}
	upgSubmission = upgProto{name: "submission", service: "submission", greeting: "220 ",
		final: func(l string) bool { return len(l) >= 4 && l[3] == ' ' }, quit: "QUIT", bye: "221 "}
)

// do sends command and reads its answer (reply).
func (c *upgClient) do(p upgProto, command, want string) []string {
	c.t.Helper()
	c.send("%s", command)
	return c.reply(p, strings.Fields(command)[0], want)
}

// reply reads the answer to command, which must end in a line starting
// with want, and returns its lines.
func (c *upgClient) reply(p upgProto, command, want string) []string {
	c.t.Helper()
	var lines []string
	for range 1000 {
		l := c.line()
		lines = append(lines, l)
		if p.final(l) {
			if !strings.HasPrefix(l, want) {
				c.t.Fatalf("%s: %s: %q, want %q...", c.name, command, lines, want)
			}
			return lines
		}
	}
	c.t.Fatalf("%s: %s: no end in 1000 lines", c.name, command)
	return nil
}

// upgSession is one session through pipegate whose byte counts are
// checked against its log line.
type upgSession struct {
	proto                 upgProto
	account               string
	clientTLS, backendTLS bool
	c                     *upgClient
	in0, out0             int64 // the client's counts when its login succeeded
	inAfter, outAfter     int64 // ... when the old process had exited
}

func (s *upgSession) String() string {
	return fmt.Sprintf("%s %s", s.proto.name, upgLink{account: s.account, clientTLS: s.clientTLS, backendTLS: s.backendTLS})
}

// backend is the route's backend URL for the session's protocol and
// backend link on d.
func (s *upgSession) backend(d *testenv.Dovecot) string {
	tlsQuery := "?server_name=mail.backend.test"
	switch {
	case s.proto.name == "pop3" && s.backendTLS:
		return "pop3s://" + d.POP3TLSAddr + tlsQuery
	case s.proto.name == "pop3":
		return "pop3://" + d.POP3Addr
	case s.proto.name == "sieve" && s.backendTLS:
		return "sieve+starttls://" + d.SieveAddr + tlsQuery
	case s.proto.name == "sieve":
		return "sieve://" + d.SieveAddr
	case s.backendTLS:
		return "submissions://" + d.SubmissionTLSAddr + tlsQuery
	default:
		return "submission://" + d.SubmissionAddr
	}
}

// login logs the session's account in (plaintext: allow_plaintext_auth)
// and notes the counts where the pipe begins.
func (s *upgSession) login() {
	c, p, pw := s.c, s.proto, upgPassword(s.account)
	c.t.Helper()
	switch p.name {
	case "pop3":
		c.do(p, "USER "+s.account, "+OK")
		c.do(p, "PASS "+pw, "+OK")
	case "sieve":
		c.do(p, fmt.Sprintf(`AUTHENTICATE "PLAIN" "%s"`, b64(plainMsg("", s.account, pw))), "OK")
	case "submission":
		c.do(p, "EHLO client.test", "250 ")
		c.do(p, "AUTH PLAIN "+b64(plainMsg("", s.account, pw)), "235 ")
	default:
		c.t.Fatalf("no login for protocol %q", p.name)
	}
	s.in0, s.out0 = c.counts()
}

// upgraded notes the counts once the old process has exited.
func (s *upgSession) upgraded() { s.inAfter, s.outAfter = s.c.counts() }

// end ends the session with the protocol's quit command; the server
// closes the connection.
func (s *upgSession) end() {
	s.c.t.Helper()
	s.c.do(s.proto, s.proto.quit, s.proto.bye)
	s.c.closed(s.proto.quit)
}

// checkLine checks the session's one log line (checkSessionRecord).
func (s *upgSession) checkLine(t *testing.T, m *upgMail) {
	t.Helper()
	l := upgLink{account: s.account, clientTLS: s.clientTLS, backendTLS: s.backendTLS}
	checkSessionRecord(t, m, s.proto.name, l, s.c, s.in0, s.out0, s.inAfter, s.outAfter)
}

// upgLogins counts the logins of account that d's login service logged
// from 127.0.0.2, the address of the clients through pipegate (passed by
// ID or XCLIENT; direct deliveries come from 127.0.0.3).
func upgLogins(d *testenv.Dovecot, service, account string) int {
	re := regexp.MustCompile(fmt.Sprintf(`%s-login: Info: Login: user=<%s>, .*rip=127\.0\.0\.2,`,
		regexp.QuoteMeta(service), regexp.QuoteMeta(account)))
	return len(re.FindAllString(d.Log(), -1))
}

// upgConfig is a config of pipegate mail for startUpgMail: the listen
// section, routes.yaml next to it, plaintext logins (loopback only), a
// JSON log, and more keys.
func upgConfig(listen, more string) string {
	return listen + `routes_file: routes.yaml
allow_plaintext_auth: true
drain_timeout: 20s
log:
  format: json
  level: debug
` + more
}

// upgListener is one listener of pipegate mail.
type upgListener struct {
	protocol string
	tls      bool
}

// upgProtoFront is Dovecot serving POP3, ManageSieve and submission, and
// pipegate mail with a listener for each protocol and client link of the
// sessions, routing each account to its session's backend. Of upgFront
// it uses d, m and clientTLS.
type upgProtoFront struct {
	*upgFront
	addrs map[upgListener]string
}

// startUpgProtoFront starts Dovecot with an account per session (holding
// messages[account]) and pipegate mail in front.
func startUpgProtoFront(t *testing.T, sessions []*upgSession, messages map[string][]string) *upgProtoFront {
	t.Helper()
	ca := tlstest.NewCA(t) // StartDovecot skips (or fails) without dovecot and its packages
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "mail.backend.test")
	users := map[string]string{}
	for _, s := range sessions {
		users[s.account] = upgPassword(s.account)
	}
	f := &upgProtoFront{upgFront: &upgFront{dir: t.TempDir(), clientTLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}},
		addrs: map[upgListener]string{}}
	f.d = testenv.StartDovecot(t, testenv.DovecotOptions{Users: users, Messages: messages,
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.POP3, testenv.Sieve, testenv.Submission}})
	var routes, listen strings.Builder
	routes.WriteString("routes:\n")
	listen.WriteString("listen:\n")
	for _, s := range sessions {
		fmt.Fprintf(&routes, "  - account: %s\n    backend: %s\n", s.account, s.backend(f.d))
		l := upgListener{protocol: s.proto.name, tls: s.clientTLS}
		if f.addrs[l] == "" {
			f.addrs[l] = testenv.FreeAddr(t)
			fmt.Fprintf(&listen, "  - addr: %s\n    protocol: %s\n    tls: %v\n", f.addrs[l], l.protocol, l.tls)
		}
	}
	writeFile(t, filepath.Join(f.dir, "routes.yaml"), routes.String())
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	f.config = upgConfig(listen.String(), fmt.Sprintf("tls:\n  cert: %s\n  key: %s\nbackend_tls:\n  ca: %s\n", pcert, pkey, ca.CertFile(t)))
	var addrs []string
	for _, a := range f.addrs {
		addrs = append(addrs, a)
	}
	f.m = startUpgMail(t, f.dir, f.config, addrs...)
	return f
}

// open connects s's client from 127.0.0.2 to its listener and logs in.
func (f *upgProtoFront) open(t *testing.T, s *upgSession) {
	t.Helper()
	var cfg *tls.Config
	if s.clientTLS {
		cfg = f.clientTLS
	}
	s.c = dialUpgGreeting(t, s.String(), "127.0.0.2", f.addrs[upgListener{s.proto.name, s.clientTLS}], cfg, s.proto.greeting)
	s.login()
}

package tests

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// quirkUser's password holds what a careless proxy would mis-quote when it
// sends the LOGIN on: a double quote, backslashes, a literal marker, a
// space and a percent sign.
const (
	quirkUser = "quirk@a.test"
	quirkPass = `q"uo\te{5}\\ x%`
)

// idBackends is one Dovecot (a.test: alice, carol, quirk) shared by the
// pipegate instances of one identity test, each with its own config.
type idBackends struct {
	ca     *tlstest.CA
	caFile string
	d1     *testenv.Dovecot
	routes string // routes file without default: only a.test is served, by d1
}

func newIDBackends(t *testing.T) *idBackends {
	t.Helper()
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	b := &idBackends{ca: tlstest.NewCA(t)}
	b.caFile = b.ca.CertFile(t)
	cert, key := b.ca.Issue(t, "127.0.0.1", "localhost", "imap.backend.test")
	users := maps.Clone(backend1Users)
	users[quirkUser] = quirkPass
	b.d1 = testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
	})
	b.routes = filepath.Join(t.TempDir(), "routes.yaml")
	writeFile(t, b.routes, fmt.Sprintf("routes:\n  - domain: a.test\n    backend: imap://%s\n", b.d1.Addr))
	return b
}

// fileRouting is the config line routing by b's routes file.
func (b *idBackends) fileRouting() string { return "routes_file: " + b.routes + "\n" }

// httpRouting routes by an auth_http service only, with Auth-Pass.
func httpRouting(svc *idAuthService) string {
	return fmt.Sprintf("route_sources:\n  - type: http\n    url: %s\n    pass_password: true\n", svc.URL)
}

// pipegate starts the binary for t (stopped in t's cleanup) in front of b,
// with routing (routes_file: or route_sources:) and extra config lines.
// Plaintext LOGIN is allowed on the plain listener.
func (b *idBackends) pipegate(t *testing.T, routing, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	cert, key := b.ca.Issue(t, "127.0.0.1", "localhost")
	e := &env{
		t: t, ca: b.ca, caFile: b.caFile, d1: b.d1, dir: dir, certFile: cert, keyFile: key,
		plainAddr: testenv.FreeAddr(t), tlsAddr: testenv.FreeAddr(t), metricsAddr: testenv.FreeAddr(t),
		configPath: filepath.Join(dir, "imap.yaml"),
	}
	writeFile(t, e.configPath, fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
%sallow_plaintext_auth: true
metrics_addr: %s
auth_penalty:
  base: 1ms
  max: 5ms
drain_timeout: 5s
log:
  level: debug
%s`, e.plainAddr, e.tlsAddr, cert, key, b.caFile, routing, e.metricsAddr, extra))
	t.Cleanup(func() { noIdentitySecretsLogged(t, e) }) // after e.stop: the whole log
	e.start()
	return e
}

// noIdentitySecretsLogged: the passwords only these tests use stay out of
// the log too (env.stop checks the others).
func noIdentitySecretsLogged(t *testing.T, e *env) {
	log := e.log()
	for _, p := range []string{quirkPass, "otp-123", "q\"uo"} {
		if strings.Contains(log, p) {
			t.Errorf("the pipegate log holds the password %q", p)
		}
	}
}

// idAuthRequest is one request an auth_http service received.
type idAuthRequest struct {
	RawUser, RawPass string // as sent, escaped
	User, Pass       string // unescaped
	ClientIP         string
	SSL              string // Auth-SSL
	Method           string // Auth-Method
}

// idAuthService is an nginx auth_http service that records what it is
// asked and answers with the headers answer returns.
type idAuthService struct {
	URL    string
	answer func(idAuthRequest) map[string]string

	mu   sync.Mutex
	reqs []idAuthRequest
}

func startAuthService(t *testing.T, answer func(idAuthRequest) map[string]string) *idAuthService {
	t.Helper()
	s := &idAuthService{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/auth"
	return s
}

func (s *idAuthService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req := idAuthRequest{
		RawUser: r.Header.Get("Auth-User"), RawPass: r.Header.Get("Auth-Pass"),
		ClientIP: r.Header.Get("Client-IP"), SSL: r.Header.Get("Auth-SSL"), Method: r.Header.Get("Auth-Method"),
	}
	req.User, req.Pass = unescapeAuth(req.RawUser), unescapeAuth(req.RawPass)
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	for k, v := range s.answer(req) {
		w.Header().Set(k, v)
	}
	w.WriteHeader(http.StatusOK)
}

// unescapeAuth undoes nginx's %XX escaping; a value that is not valid
// escaping is returned as is.
func unescapeAuth(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// from returns the requests made for a client on ip.
func (s *idAuthService) from(ip string) []idAuthRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []idAuthRequest
	for _, r := range s.reqs {
		if r.ClientIP == ip {
			out = append(out, r)
		}
	}
	return out
}

func (s *idAuthService) all() []idAuthRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]idAuthRequest(nil), s.reqs...)
}

// routeTo is an auth_http OK answer naming d's plain port.
func routeTo(d *testenv.Dovecot) map[string]string {
	host, port, _ := net.SplitHostPort(d.Addr)
	return map[string]string{"Auth-Status": "OK", "Auth-Server": host, "Auth-Port": port}
}

// tagged reads until the tagged answer of tag; a continuation request is
// an error (nothing more is owed to the server).
func tagged(t *testing.T, rc *rawClient, tag string) string {
	t.Helper()
	for range 100 {
		l, err := rc.line()
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", tag, err)
		}
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
		if strings.HasPrefix(l, "+") {
			t.Errorf("continuation request %q where the answer to %s was due; cancelling", l, tag)
			rc.send("*\r\n")
		}
	}
	t.Fatalf("no answer to %s in 100 lines", tag)
	return ""
}

// literalCommand sends "tag head{n}" (n = len(lit), "{n+}" when nonSync),
// lit after the server's "+" (at once when nonSync), then tail and CRLF,
// and returns the tagged answer (also when it comes instead of the "+").
func literalCommand(t *testing.T, rc *rawClient, tag, head, lit, tail string, nonSync bool) string {
	t.Helper()
	if nonSync {
		rc.send("%s %s{%d+}\r\n%s%s\r\n", tag, head, len(lit), lit, tail)
		return tagged(t, rc, tag)
	}
	rc.send("%s %s{%d}\r\n", tag, head, len(lit))
	l, err := rc.line()
	if err != nil {
		t.Fatalf("waiting for the literal's continuation: %v", err)
	}
	if strings.HasPrefix(l, tag+" ") {
		return l
	}
	if !strings.HasPrefix(l, "+") {
		t.Fatalf("literal {%d}: %q, want a continuation request", len(lit), l)
	}
	rc.send("%s%s\r\n", lit, tail)
	return tagged(t, rc, tag)
}

// authenticate sends "tag AUTHENTICATE mech" with the base64 of ir as
// initial response when ir is not nil, answers the server's continuation
// requests with the base64 of resps in order, and returns the tagged
// answer. A continuation beyond resps is an error (and is cancelled).
func authenticate(t *testing.T, rc *rawClient, tag, mech string, ir []byte, resps ...[]byte) string {
	t.Helper()
	if ir != nil {
		rc.send("%s AUTHENTICATE %s %s\r\n", tag, mech, b64(ir))
	} else {
		rc.send("%s AUTHENTICATE %s\r\n", tag, mech)
	}
	for range 10 {
		l, err := rc.line()
		if err != nil {
			t.Fatalf("AUTHENTICATE %s: waiting for the answer: %v", mech, err)
		}
		switch {
		case strings.HasPrefix(l, tag+" "):
			return l
		case strings.HasPrefix(l, "+") && len(resps) > 0:
			rc.send("%s\r\n", b64(resps[0]))
			resps = resps[1:]
		case strings.HasPrefix(l, "+"):
			t.Errorf("AUTHENTICATE %s: unexpected continuation request %q; cancelling", mech, l)
			rc.send("*\r\n")
		}
	}
	t.Fatalf("AUTHENTICATE %s: no answer", mech)
	return ""
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// isRefusal: a tagged NO [AUTHENTICATIONFAILED] or a tagged BAD.
func isRefusal(l, tag string) bool {
	return strings.HasPrefix(l, tag+" NO [AUTHENTICATIONFAILED]") || strings.HasPrefix(l, tag+" BAD")
}

// backendUntouched proves that the attempts from src so far never reached
// Dovecot d: it logs sentinel in from src through e (on a new connection),
// waits for d's line of that login and then requires that d logged
// nothing else with rip=src.
func backendUntouched(t *testing.T, e *env, d *testenv.Dovecot, src, sentinel string) {
	t.Helper()
	rc := rawDial(t, src, e.plainAddr)
	rc.send("s LOGIN %s %s\r\n", sentinel, password(sentinel))
	if l := tagged(t, rc, "s"); !strings.HasPrefix(l, "s OK") {
		t.Fatalf("sentinel login of %s from %s: %s", sentinel, src, l)
	}
	rc.c.Close()
	mine := `Login: user=<` + regexp.QuoteMeta(sentinel) + `>, method=PLAIN, rip=` + regexp.QuoteMeta(src) + `,`
	d.WaitLog(t, mine)
	re := regexp.MustCompile(mine)
	n := 0
	for _, l := range strings.Split(d.Log(), "\n") {
		if !strings.Contains(l, "rip="+src+",") {
			continue
		}
		if re.MatchString(l) {
			n++
			continue
		}
		t.Errorf("Dovecot saw the attempt from %s: %s", src, l)
	}
	if n != 1 {
		t.Errorf("Dovecot logged %d logins of the sentinel %s from %s, want 1", n, sentinel, src)
	}
}

// waitLogT is env.waitLog for a subtest's t.
func waitLogT(t *testing.T, e *env, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var line string
	waitUntil(t, fmt.Sprintf("a line matching %q in the pipegate log", pattern), func() bool {
		for _, l := range strings.Split(e.log(), "\n") {
			if re.MatchString(l) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// noFalseAccountLogged: no account name with NUL, CR or LF in pipegate's
// log, escaped or raw.
func noFalseAccountLogged(t *testing.T, e *env) {
	t.Helper()
	log := e.log()
	if strings.ContainsAny(log, "\x00") {
		t.Errorf("the pipegate log holds a raw NUL byte")
	}
	re := regexp.MustCompile(`account="(?:[^"\\]|\\.)*\\(?:x00|u0000|r|n)`)
	for _, l := range strings.Split(log, "\n") {
		if re.MatchString(l) {
			t.Errorf("the pipegate log names an account with NUL, CR or LF: %s", l)
		}
	}
}

var loginsMetric = regexp.MustCompile(`(?m)^pipegate_imap_logins_total\{([^}]*)\} (\S+)$`)
var resultLabel = regexp.MustCompile(`result="([^"]*)"`)

// loginCounts fetches pipegate's metrics and sums
// pipegate_imap_logins_total by result.
func loginCounts(t *testing.T, e *env) map[string]int {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+e.metricsAddr+"/metrics").CombinedOutput()
	if err != nil {
		t.Fatalf("GET /metrics: %v\n%s", err, out)
	}
	counts := map[string]int{}
	for _, m := range loginsMetric.FindAllStringSubmatch(string(out), -1) {
		r := resultLabel.FindStringSubmatch(m[1])
		if r == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("metric value %q: %v", m[2], err)
		}
		counts[r[1]] += int(v)
	}
	return counts
}

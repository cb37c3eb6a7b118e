// Package authhttp is a route source that asks an HTTP service, speaking
// the protocol of nginx's mail auth_http module, so an operator can keep
// the auth service they run for nginx today.
//
//	src, err := authhttp.New(authhttp.Config{
//		URL:          "http://127.0.0.1:9000/auth",
//		PassPassword: true, // send Auth-Pass, as nginx does
//	})
//	if err != nil { ... }
//	defer src.Close()
//	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test",
//		Password: "secret", AuthMethod: "plain", Attempt: 1, ClientAddr: client})
//	var denied *route.Denied
//	if errors.As(err, &denied) { /* tag NO denied.Text, retry after denied.Wait */ }
//
// Config.URL is http://HOST[:PORT]/PATH, https://..., or, as nginx's
// auth_http spells it, unix:/run/auth.sock:/auth: the service listens on
// that Unix socket (an absolute path, ending at the first ':') and gets
// requests for /auth (for "/" when the URI is left out) with Host
// "localhost".
//
// The request is a GET with these headers, names spelt and values sent as
// nginx does (Auth-User and Auth-Pass are escaped as nginx does: %XX for
// space, '%' and every byte outside printable ASCII, below 0x20, DEL and
// 0x80 and up):
//
//	Auth-Method: plain              (LOGIN and AUTHENTICATE PLAIN/LOGIN; else the SASL name in lower case)
//	Auth-User: alice@a.test
//	Auth-Pass: secret               (only with PassPassword)
//	Auth-Protocol: imap             (imap, pop3, sieve; smtp for submission, as nginx names it)
//	Auth-Login-Attempt: 1
//	Client-IP: 192.0.2.7
//	Auth-SSL: on                    (only when the client's connection is TLS)
//	Auth-SSL-Protocol: TLSv1.3      (with Auth-SSL, as OpenSSL names it: TLSv1.2, TLSv1.3)
//	Auth-SSL-Cipher: TLS_AES_128_GCM_SHA256
//	                                (with Auth-SSL, as OpenSSL names it: ECDHE-RSA-AES128-GCM-SHA256
//	                                for a TLS 1.2 suite)
//	plus Config.Headers             (nginx's auth_http_header)
//
// Auth-SSL-Protocol and Auth-SSL-Cipher are sent when the gateway ended
// the client's TLS itself; when a trusted proxy in front ended it (PROXY
// v2 with its SSL TLV) Auth-SSL: on goes alone. The Auth-SSL-Verify,
// -Subject, -Cert ... headers of client certificates are not sent.
//
// Client-Host is not sent: pipegate does no reverse DNS (nginx sends it
// only for SMTP). Auth-Salt does not apply (no APOP or CRAM-MD5).
//
// The answer's headers (the HTTP status is ignored, as nginx does, but
// Auth-Status must be there):
//
//	Auth-Status: OK                 or WAIT (ask again after Auth-Wait, as nginx does; at most
//	                                10 times in a row), or an error text, relayed to the client
//	                                (→ *route.Denied)
//	Auth-Wait: 3                    seconds before the client may retry (→ Denied.Wait)
//	Auth-Error-Code: 535 5.7.8      (→ Denied.Code) an SMTP reply code, for submission only as
//	                                in nginx; a code without digits first (UNAVAILABLE) for all
//	Auth-Server: 10.0.0.1           host name or address of the backend
//	Auth-Port: 143                  a backend of the request's protocol (imap://, pop3://,
//	                                sieve://, submission://)
//	                                With PassPassword, an OK means the service checked the
//	                                password (→ Route.Checked), as nginx takes it.
//	Auth-User: alice                login name for the backend (→ Route.Login)
//	Auth-Pass: secret2              password for the backend (→ Route.Password)
//
// and pipegate's own:
//
//	X-Pipegate-Backend-TLS: none | starttls | tls   how to speak TLS to Auth-Server (default: none):
//	                                                the protocol's scheme for it (pop3, pop3+starttls,
//	                                                pop3s; submission, submission+starttls, submissions)
//	X-Pipegate-Server-Name: mail.a.test             name to verify its certificate against
//	X-Pipegate-Backend: imaps://10.0.0.1:993 ...    instead of Auth-Server/Auth-Port: one or more
//	                                                backend URLs (space separated, or repeated), tried in order;
//	                                                the session uses those of its own protocol
//
// The schemes of a protocol other than IMAP are known once its package is
// linked in (it registers them with route.RegisterScheme); an answer for a
// protocol whose schemes are unknown is an error.
//
// A service that is down, answers without Auth-Status, or answers OK
// without a backend is an error (the proxy answers NO [UNAVAILABLE]); the
// next lookup asks again. The source never returns route.ErrNotFound: an
// auth_http service knows every account or denies it.
package authhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pipegate/pipegate/route"
)

// Config says which service to ask and what to send it.
type Config struct {
	URL          string            // http://, https://, or unix:/PATH/TO/SOCKET:/URI (nginx's spelling)
	PassPassword bool              // send Auth-Pass (nginx always does; off by default here)
	Headers      map[string]string // extra request headers, like nginx's auth_http_header
	TLS          *tls.Config       // for https:// (default: system roots)
	Client       *http.Client      // if set, used as is (TLS is then ignored)
}

// Source asks an auth_http service. It is safe for concurrent use.
type Source struct {
	url     string
	where   string // url for messages: its password, if any, redacted
	pass    bool
	headers http.Header
	client  *http.Client
	own     *http.Transport // closed by Close when the Source made it
}

// maxText bounds the Auth-Status text relayed to a client.
const maxText = 200

// maxBody bounds how much of a response body is read (to reuse the connection).
const maxBody = 64 << 10

// maxHeaders bounds the answer's headers (Go's default is 1 MiB).
const maxHeaders = 64 << 10

// New checks cfg.
func New(cfg Config) (*Source, error) {
	target, where, sock, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if sock != "" && cfg.Client != nil {
		return nil, fmt.Errorf("route/authhttp: url %q: a unix: URL needs the source's own HTTP client (Config.Client is set)", where)
	}
	if sock != "" && cfg.TLS != nil {
		return nil, fmt.Errorf("route/authhttp: url %q: TLS settings, but a unix: URL speaks plain HTTP", where)
	}
	s := &Source{url: target, where: where, pass: cfg.PassPassword, headers: http.Header{}, client: cfg.Client}
	for _, k := range slices.Sorted(maps.Keys(cfg.Headers)) { // the same problem told each time
		v := cfg.Headers[k]
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("route/authhttp: headers: %q: invalid header", k)
		}
		s.headers.Set(k, v)
	}
	if s.client == nil {
		dialer := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		dial := dialer.DialContext
		if sock != "" {
			dial = (&unixDialer{path: sock, d: dialer}).DialContext
		}
		s.own = &http.Transport{
			Proxy:                  nil, // never through $HTTP_PROXY: the auth service is ours
			DialContext:            dial,
			TLSClientConfig:        cfg.TLS,
			MaxIdleConns:           64,
			MaxIdleConnsPerHost:    64,
			IdleConnTimeout:        60 * time.Second,
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  30 * time.Second,
			MaxResponseHeaderBytes: maxHeaders,
			ForceAttemptHTTP2:      cfg.TLS != nil,
		}
		s.client = &http.Client{
			Transport: s.own,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // nginx does not follow redirects either
			},
		}
	}
	return s, nil
}

// parseURL checks raw, an http://, https:// or unix: URL, and returns the
// URL to request (for unix:/run/auth.sock:/auth, http://localhost/auth:
// Host is "localhost", as nginx sends it), the URL for messages (its
// password, if any, redacted) and the socket's path ("" for http and
// https).
func parseURL(raw string) (target, where, sock string, err error) {
	if isUnixURL(raw) {
		sock, uri, err := parseUnixURL(raw)
		if err != nil {
			return "", "", "", fmt.Errorf("route/authhttp: url %q: %w", raw, err)
		}
		return "http://localhost" + uri, raw, sock, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL, which may hold a password
		}
		return "", "", "", fmt.Errorf("route/authhttp: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", "", "", fmt.Errorf("route/authhttp: url %q: want http://HOST[:PORT]/PATH, https://, or unix:/PATH/TO/SOCKET:/URI", u.Redacted())
	}
	return raw, u.Redacted(), "", nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Close drops idle connections to the service.
func (s *Source) Close() error {
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}

// Lookup asks the service about req. An answer "Auth-Status: WAIT" is
// not a refusal: as nginx does, the source waits Auth-Wait seconds (none
// when absent) and asks again, at most maxWaits times and never past ctx.
func (s *Source) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	for waits := 0; ; waits++ {
		rt, err := s.ask(ctx, req)
		w, ok := errors.AsType[*waitAnswer](err)
		if !ok {
			return rt, err
		}
		if waits == maxWaits {
			return route.Route{}, fmt.Errorf("route/authhttp: %s answered %q %d times in a row", s.where, "Auth-Status: WAIT", waits+1)
		}
		if w.d > 0 {
			t := time.NewTimer(w.d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return route.Route{}, fmt.Errorf("route/authhttp: %s answered %q, then the login ended: %w", s.where, "Auth-Status: WAIT", ctx.Err())
			}
		}
	}
}

// maxWaits bounds how often one lookup takes "Auth-Status: WAIT" before
// it fails (nginx asks for as long as the service says WAIT; a service
// that says it with no Auth-Wait would then be asked in a tight loop).
const maxWaits = 10

// waitAnswer is an "Auth-Status: WAIT" answer: ask again after d.
type waitAnswer struct{ d time.Duration }

func (w *waitAnswer) Error() string { return fmt.Sprintf("Auth-Status: WAIT (Auth-Wait %s)", w.d) }

// ask sends one request for req and reads its answer.
func (s *Source) ask(ctx context.Context, req route.Request) (route.Route, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/authhttp: %w", err)
	}
	s.setHeaders(hreq.Header, req)
	resp, err := s.client.Do(hreq)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/authhttp: ask %s: %w", s.where, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	rt, err := parseResponse(resp.Header, req.Protocol)
	if err != nil {
		var denied *route.Denied
		var wait *waitAnswer
		if errors.As(err, &denied) || errors.As(err, &wait) {
			return route.Route{}, err
		}
		return route.Route{}, fmt.Errorf("route/authhttp: %s answered %s: %w", s.where, resp.Status, err)
	}
	// The service had the password and said OK: it checked it, as nginx
	// takes an OK (a backend with login=xclient relies on it).
	rt.Checked = s.pass && req.Password != ""
	return rt, nil
}

func (s *Source) setHeaders(h http.Header, req route.Request) {
	for k, v := range s.headers {
		h[k] = v
	}
	attempt := req.Attempt
	if attempt < 1 {
		attempt = 1
	}
	h.Set("Auth-Method", authMethod(req.AuthMethod))
	h.Set("Auth-User", Escape(req.Account))
	if s.pass {
		h.Set("Auth-Pass", Escape(req.Password))
	}
	h.Set("Auth-Protocol", authProtocol(req.Protocol))
	h.Set("Auth-Login-Attempt", strconv.Itoa(attempt))
	// Client-IP and Auth-SSL(-*) are spelt as nginx spells them, not in
	// Go's canonical form (Client-Ip, Auth-Ssl): a service that reads raw
	// header lines looks for nginx's spelling.
	if req.ClientAddr.IsValid() {
		h["Client-IP"] = []string{req.ClientAddr.Addr().Unmap().WithZone("").String()} // as nginx's $remote_addr: no zone
	}
	if req.ClientTLS {
		h["Auth-SSL"] = []string{"on"}
		// Known only when the gateway ended the TLS itself, not a proxy
		// in front: nginx too sends them only when it has them.
		if p := sslProtocol(req.ClientTLSVersion); p != "" {
			h["Auth-SSL-Protocol"] = []string{p}
		}
		if req.ClientTLSCipher != 0 {
			h["Auth-SSL-Cipher"] = []string{sslCipher(req.ClientTLSCipher)}
		}
	}
}

// authProtocol names the protocol as nginx does: "smtp" for submission
// (nginx's mail module proxies SMTP with the same header), "imap" when
// unset.
func authProtocol(p string) string {
	switch p {
	case "":
		return "imap"
	case "submission":
		return "smtp"
	}
	return p
}

// authMethod names the method as nginx does: LOGIN and the SASL mechanisms
// PLAIN and LOGIN all send a clear-text password, "plain".
func authMethod(m string) string {
	switch m = strings.ToLower(m); m {
	case "", "login", "plain":
		return "plain"
	}
	return m
}

// Escape escapes a value as nginx's mail auth_http does (its
// NGX_ESCAPE_MAIL_AUTH table): %XX for space, '%' and every byte outside
// printable ASCII (below 0x20, DEL, 0x80 and up), so a header holds only
// printable ASCII whatever the client sent. The service undoes it with a
// URL unescape.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func needsEscape(c byte) bool { return c <= ' ' || c == '%' || c >= 0x7f }

// parseResponse reads the auth_http answer headers to a request for
// protocol ("" is IMAP).
func parseResponse(h http.Header, protocol string) (route.Route, error) {
	statuses := h[textproto.CanonicalMIMEHeaderKey("Auth-Status")]
	if len(statuses) == 0 {
		return route.Route{}, errors.New(`no "Auth-Status" header`)
	}
	status := strings.TrimSpace(statuses[0])
	for _, v := range statuses[1:] {
		if v := strings.TrimSpace(v); v != status {
			// nginx lets the login through only when every one says OK.
			return route.Route{}, fmt.Errorf(`%d "Auth-Status" headers that differ (%q, %q)`, len(statuses), status, v)
		}
	}
	if status != "OK" {
		wait, err := authWait(h)
		if err != nil {
			return route.Route{}, err
		}
		if status == "WAIT" { // as nginx: exactly this, ask again after Auth-Wait
			return route.Route{}, &waitAnswer{d: wait}
		}
		d := &route.Denied{Text: status, Wait: wait, Code: errorCode(h, protocol)}
		if d.Text == "" {
			d.Text = "Authentication failed"
		}
		if len(d.Text) > maxText {
			d.Text = d.Text[:maxText]
		}
		return route.Route{}, d
	}

	var rt route.Route
	rt.Login = h.Get("Auth-User")
	rt.Password = h.Get("Auth-Pass")
	if urls := h.Values("X-Pipegate-Backend"); len(urls) > 0 {
		for _, v := range urls {
			for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
				b, err := route.ParseBackend(f)
				if err != nil {
					return route.Route{}, fmt.Errorf(`"X-Pipegate-Backend": %w`, err)
				}
				if rt.Backends = append(rt.Backends, b); len(rt.Backends) > route.MaxBackends {
					return route.Route{}, fmt.Errorf(`"X-Pipegate-Backend": more than %d backends`, route.MaxBackends)
				}
			}
		}
		if len(rt.Backends) == 0 {
			return route.Route{}, errors.New(`empty "X-Pipegate-Backend"`)
		}
		return rt, nil
	}
	b, err := serverPort(h, protocol)
	if err != nil {
		return route.Route{}, err
	}
	rt.Backends = []route.Backend{b}
	return rt, nil
}

// authWait reads Auth-Wait: 0 when absent.
func authWait(h http.Header) (time.Duration, error) {
	w := strings.TrimSpace(h.Get("Auth-Wait"))
	if w == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 0 || n > 86400 {
		return 0, fmt.Errorf(`invalid "Auth-Wait: %s" (want seconds)`, w)
	}
	return time.Duration(n) * time.Second, nil
}

// errorCode reads Auth-Error-Code for protocol. nginx uses it for SMTP
// only, as the reply code ("535 5.7.8"); a service written for nginx may
// send it with every refusal. So an SMTP reply code (it starts with a
// digit) is kept for submission only, and any other code (an IMAP
// response code such as UNAVAILABLE) for every protocol.
func errorCode(h http.Header, protocol string) string {
	code := strings.TrimSpace(h.Get("Auth-Error-Code"))
	if code != "" && code[0] >= '0' && code[0] <= '9' && protocol != "submission" {
		return ""
	}
	return code
}

// serverPort builds the backend of protocol from Auth-Server, Auth-Port
// and pipegate's TLS headers.
func serverPort(h http.Header, protocol string) (route.Backend, error) {
	server := strings.TrimSpace(h.Get("Auth-Server"))
	port := strings.TrimSpace(h.Get("Auth-Port"))
	if server == "" || port == "" {
		return route.Backend{}, errors.New(`"Auth-Status: OK" without "Auth-Server" and "Auth-Port"`)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return route.Backend{}, fmt.Errorf(`invalid "Auth-Port: %s"`, port)
	}
	if strings.ContainsAny(server, " /?#@[]") && !strings.HasPrefix(server, "[") {
		return route.Backend{}, fmt.Errorf(`invalid "Auth-Server: %s"`, server)
	}
	host := strings.Trim(server, "[]")
	if strings.ContainsAny(host, " /?#@[]") {
		return route.Backend{}, fmt.Errorf(`invalid "Auth-Server: %s"`, server)
	}
	mode := strings.TrimSpace(h.Get("X-Pipegate-Backend-TLS"))
	tls, err := route.ParseTLSMode(mode)
	if err != nil {
		return route.Backend{}, fmt.Errorf(`invalid "X-Pipegate-Backend-TLS: %s" (%w)`, strings.ToLower(mode), err)
	}
	b, err := route.NewBackend(protocol, tls, host, n)
	if err != nil {
		return route.Backend{}, fmt.Errorf(`"Auth-Server: %s", "Auth-Port: %s": %w`, server, port, err)
	}
	if name := strings.TrimSpace(h.Get("X-Pipegate-Server-Name")); name != "" {
		b.ServerName = name
	}
	return b, nil
}

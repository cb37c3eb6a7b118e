package testenv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Introspection modes of Dovecot's oauth2 passdb (introspection_mode)
// that an OAuth2Server answers.
const (
	IntrospectPost = "post" // POST, the token in the form field token=
	IntrospectGet  = "get"  // GET, the token appended to the URL (…?token=)
	IntrospectAuth = "auth" // GET with "Authorization: Bearer TOKEN" (Dovecot's default)
)

// OAuth2Server is an in-process token introspection endpoint (RFC 7662)
// on 127.0.0.1 for Dovecot's oauth2 passdb (StartDovecotOAuth2). It
// answers a token added with AddToken {"active":true,"email":USER}, and
// any other token {"active":false}, which Dovecot takes as a refused
// token (a 4xx status or a reply without the user's attribute would be
// its internal failure instead: "Temporary authentication failure").
// Every token it was asked about is kept, as received, for Tokens.
type OAuth2Server struct {
	// URL is the introspection_url for Dovecot in Mode: for
	// IntrospectGet it ends in "?token=", which Dovecot appends to.
	URL  string
	Mode string // IntrospectPost, IntrospectGet or IntrospectAuth

	srv  *http.Server
	l    net.Listener
	done chan struct{}

	mu     sync.Mutex
	users  map[string]string // token -> user
	down   map[string]bool   // tokens answered 503
	tokens []string          // as asked, in order
	bad    []string          // requests not in Mode's form
}

// StartOAuth2Server starts an endpoint for introspection mode
// (IntrospectPost, IntrospectGet or IntrospectAuth) and stops it in
// t.Cleanup.
func StartOAuth2Server(t testing.TB, mode string) *OAuth2Server {
	t.Helper()
	s, err := NewOAuth2Server(mode)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
		if bad := s.BadRequests(); len(bad) > 0 {
			t.Errorf("testenv: the introspection endpoint got requests not in %s mode: %q", s.Mode, bad)
		}
	})
	return s
}

// NewOAuth2Server starts an endpoint; the caller must Close it.
func NewOAuth2Server(mode string) (*OAuth2Server, error) {
	if mode != IntrospectPost && mode != IntrospectGet && mode != IntrospectAuth {
		return nil, errors.New("oauth2 endpoint: mode " + mode + ": want " + IntrospectPost + ", " + IntrospectGet + " or " + IntrospectAuth)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &OAuth2Server{Mode: mode, l: l, users: map[string]string{}, down: map[string]bool{}, done: make(chan struct{})}
	s.URL = "http://" + l.Addr().String() + "/introspect"
	if mode == IntrospectGet {
		s.URL += "?token="
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.introspect), ReadHeaderTimeout: 10 * time.Second}
	go serveOAuth2(s)
	return s, nil
}

// serveOAuth2 is the endpoint's serving goroutine.
func serveOAuth2(s *OAuth2Server) {
	defer close(s.done)
	_ = s.srv.Serve(s.l)
}

// Close stops the endpoint.
func (s *OAuth2Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// AddToken makes token valid for user (its "email" claim).
func (s *OAuth2Server) AddToken(token, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[token] = user
}

// FailToken makes the endpoint answer 503 Service Unavailable for token,
// as an authorization server that is down: Dovecot's internal failure
// ("Temporary authentication failure"), not a refused token.
func (s *OAuth2Server) FailToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[token] = true
}

// Tokens are the tokens the endpoint was asked about so far, as received.
func (s *OAuth2Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// BadRequests describes the requests that were not in the endpoint's mode.
func (s *OAuth2Server) BadRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

func (s *OAuth2Server) introspect(w http.ResponseWriter, r *http.Request) {
	var token string
	var ok bool
	switch s.Mode {
	case IntrospectPost:
		ok = r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" && r.ParseForm() == nil
		token = r.PostForm.Get("token")
	case IntrospectGet:
		ok = r.Method == http.MethodGet
		token = r.URL.Query().Get("token")
	case IntrospectAuth:
		ok = r.Method == http.MethodGet
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	s.mu.Lock()
	if !ok || token == "" {
		s.bad = append(s.bad, r.Method+" "+r.URL.String())
	}
	s.tokens = append(s.tokens, token)
	user, valid := s.users[token]
	down := s.down[token]
	s.mu.Unlock()
	if down {
		http.Error(w, "authorization server down", http.StatusServiceUnavailable)
		return
	}
	reply := map[string]any{"active": false}
	if valid {
		reply = map[string]any{"active": true, "email": user, "token_type": "Bearer", "scope": "mail"}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// OAuthMessage is a client's XOAUTH2 or OAUTHBEARER message (mech) for
// user with token, as mail clients send it; OAUTHBEARER's names the
// server 127.0.0.1:port (RFC 7628 section 3.1).
func OAuthMessage(mech, user, token string, port int) string {
	if mech == "XOAUTH2" {
		return "user=" + user + "\x01auth=Bearer " + token + "\x01\x01"
	}
	esc := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)
	return "n,a=" + esc + ",\x01host=127.0.0.1\x01port=" + strconv.Itoa(port) + "\x01auth=Bearer " + token + "\x01\x01"
}

// LongJWT is a JWT-shaped token of about n bytes (base64url parts joined
// by dots), unique by seed: what identity providers issue, some KiB long.
func LongJWT(seed string, n int) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"` + seed + `"}`))
	claims := enc.EncodeToString([]byte(`{"sub":"` + seed + `","pad":"` + strings.Repeat("x", n*3/4) + `"}`))
	sig := enc.EncodeToString([]byte(strings.Repeat(seed, 256/len(seed)+1)[:256]))
	return head + "." + claims + "." + sig
}

package maild

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/affinity"
	"github.com/pipegate/pipegate/gateway"
)

// The admin address's session API (Dovecot's `doveadm proxy list` and
// `doveadm proxy kick`), over every listener's server of this instance:
//
//	GET  /sessions[?account=A]    the piped sessions ([]gateway.SessionInfo), by account, oldest first
//	POST /sessions/kick           account=A (form, query or {"account": A}): end A's sessions (KickInfo)
//
// An instance answers for its own sessions only. Errors are JSON, as the
// affinity API's: {"error": "...", "field": "..."}.

// sessionServer is a server whose piped sessions can be listed and
// kicked: each protocol's Server, through its embedded gateway.Server.
type sessionServer interface {
	Sessions() []gateway.SessionInfo
	Kick(account string) int
}

// KickInfo answers POST /sessions/kick: how many sessions of Account this
// instance ended.
type KickInfo struct {
	Account string `json:"account"`
	Kicked  int    `json:"kicked"`
}

// maxKickBody bounds a kick's request body.
const maxKickBody = 64 << 10

// sessionServers are the daemon's servers that hold sessions (all of
// them: every protocol's Server embeds a gateway.Server).
func (d *Daemon) sessionServers() []sessionServer {
	var out []sessionServer
	for _, srv := range d.servers {
		if ss, ok := srv.(sessionServer); ok {
			out = append(out, ss)
		}
	}
	return out
}

// sessionsHandler serves /sessions and /sessions/kick for the daemon's
// servers, logging each kick.
func (d *Daemon) sessionsHandler() http.Handler {
	return newSessionsHandler(d.sessionServers(), d.log, d.prefix)
}

type sessionsAPI struct {
	servers []sessionServer
	log     *slog.Logger
	prefix  string
}

// newSessionsHandler serves the session API over servers. A browser's
// cross-site request is refused (http.CrossOriginProtection); the address
// must still be on a trusted network: whoever reaches it can end sessions.
func newSessionsHandler(servers []sessionServer, log *slog.Logger, prefix string) http.Handler {
	a := &sessionsAPI{servers: servers, log: log, prefix: prefix}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sessions", a.list)
	mux.HandleFunc("POST /sessions/kick", a.kick)
	mux.HandleFunc("/sessions", methodNotAllowed("GET"))
	mux.HandleFunc("/sessions/kick", methodNotAllowed("POST"))
	mux.HandleFunc("/sessions/", func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusNotFound, affinity.APIError{Error: fmt.Sprintf("no such path %q (GET /sessions, POST /sessions/kick)", r.URL.Path)})
	})
	return adminHostOnly(http.NewCrossOriginProtection().Handler(mux))
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		admin.WriteJSON(w, http.StatusMethodNotAllowed, affinity.APIError{Error: fmt.Sprintf("%s %s: method not allowed, use %s", r.Method, r.URL.Path, allow)})
	}
}

// list answers the sessions of every server (of one account with
// ?account=), in gateway.SessionInfo.Compare's order.
func (a *sessionsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	account, filter := q.Get("account"), q.Has("account")
	if filter && account == "" {
		admin.WriteJSON(w, http.StatusBadRequest, affinity.APIError{Error: "account is empty (leave it out to list every session)", Field: "account"})
		return
	}
	out := []gateway.SessionInfo{} // [] rather than null when there is none
	for _, srv := range a.servers {
		for _, s := range srv.Sessions() {
			if !filter || s.Of(account) {
				out = append(out, s)
			}
		}
	}
	slices.SortStableFunc(out, gateway.SessionInfo.Compare)
	admin.WriteJSON(w, http.StatusOK, out)
}

// kick ends the sessions of the account the request names on every
// server.
func (a *sessionsAPI) kick(w http.ResponseWriter, r *http.Request) {
	account, err := kickAccount(w, r)
	if err == nil && account == "" {
		err = fmt.Errorf("account is required: account=NAME in the query or the form body, or {\"account\": NAME}")
	}
	if err != nil {
		admin.WriteJSON(w, http.StatusBadRequest, affinity.APIError{Error: err.Error(), Field: "account"})
		return
	}
	n := 0
	for _, srv := range a.servers {
		n += srv.Kick(account)
	}
	a.log.Info(a.prefix+"admin: sessions kicked", "account", account, "sessions", n, "by", r.RemoteAddr)
	admin.WriteJSON(w, http.StatusOK, KickInfo{Account: account, Kicked: n})
}

// kickAccount reads the account of a kick: a JSON body's "account", else
// the form's (body or query). A request that names it ambiguously (twice,
// differently; a JSON key repeated; more than one JSON value) is refused,
// as it would kick someone nobody can tell.
func kickAccount(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxKickBody)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		account, err := jsonAccount(r.Body)
		if err != nil {
			return "", fmt.Errorf("request body: %w", err)
		}
		vs := r.URL.Query()["account"]
		for _, v := range vs {
			if v != vs[0] || account != "" && v != account {
				return "", fmt.Errorf("account given more than once, differently (the body's %q, the query's %s)", account, strings.Join(vs, ", "))
			}
		}
		if account == "" && len(vs) > 0 {
			account = vs[0]
		}
		return account, nil
	}
	if err := r.ParseForm(); err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	if vs := r.Form["account"]; len(vs) > 1 && slices.ContainsFunc(vs, func(v string) bool { return v != vs[0] }) {
		return "", fmt.Errorf("account given %d times, differently (%s)", len(vs), strings.Join(vs, ", "))
	}
	return r.Form.Get("account"), nil
}

// jsonAccount reads {"account": "..."} and nothing else: one object, no
// other key, the key once, nothing after it.
func jsonAccount(body io.Reader) (string, error) {
	dec := json.NewDecoder(body)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("want a JSON object {\"account\": NAME}")
	}
	account, seen := "", false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		if key, _ := t.(string); key != "account" {
			return "", fmt.Errorf("unknown field %q", t)
		}
		if seen {
			return "", fmt.Errorf("\"account\" given twice")
		}
		seen = true
		if err := dec.Decode(&account); err != nil {
			return "", fmt.Errorf("\"account\": %w", err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("more than one JSON value")
	}
	return account, nil
}

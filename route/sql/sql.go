// Package sql is a route source that asks PostgreSQL, the way Dovecot's
// passdb/userdb SQL queries do: a query with the account as a parameter
// returns the backend.
//
//	src, err := sql.New(ctx, sql.Config{
//		URL:   "postgres://pipegate@db.example.org/mail?sslmode=verify-full",
//		Password: dbPassword, // overrides one in URL; the config reads password_file
//		Query: "SELECT host, port, tls, login FROM routes WHERE account = lower($1)",
//	})
//	if err != nil { ... }
//	defer src.Close()
//	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
//
// One table for every protocol, with a port per protocol:
//
//	SELECT host, CASE @protocol WHEN 'pop3' THEN pop3_port WHEN 'imap' THEN imap_port END AS port
//	FROM mailboxes WHERE account = lower(@account)
//
// The query takes the account as $1, or, if it uses named parameters
// instead, any of @account, @local (part before the last '@'), @domain,
// @client_ip (text, "" when unknown) and @protocol (imap, pop3, sieve,
// submission: the session's). It returns, by column name:
//
//	backend      a backend URL (imaps://host:port...), or several separated by spaces
//	             (URLs of several protocols may stand together: the gateway uses its
//	             session's); or:
//	host         the backend's host name or address: a backend of the session's protocol
//	port         its port (default: the scheme's, e.g. 143, or 993 with tls; pop3 110 or 995)
//	tls          none (default), starttls or tls: the protocol's scheme (pop3, pop3+starttls, pop3s)
//	server_name  the name to verify its certificate against (default: host)
//	login        optional: the login name for the backend (first non-empty row wins)
//
// Each row is one backend, tried in the order of the rows (add ORDER BY).
// No row, or only NULL backends, is route.ErrNotFound. A database that is
// down or slow is an error at the lookup's deadline; the pool reconnects
// by itself when the database is back.
package sql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipegate/pipegate/route"
)

// Config says which database to ask and what.
type Config struct {
	URL      string // postgres://user@host:port/db?sslmode=... (libpq keyword=value strings work too)
	Password string // overrides one in URL (""; keep URL's); never in logs or errors
	Query    string // see the package comment
	MaxConns int32  // pool size (default: pgxpool's, max(4, CPUs))
}

// Source asks PostgreSQL. It is safe for concurrent use.
type Source struct {
	pool     *pgxpool.Pool
	query    string
	named    bool
	where    string                 // host:port/db for errors, without password
	password atomic.Pointer[string] // nil: URL's; SetPassword replaces it
}

var namedParams = []string{"@account", "@local", "@domain", "@client_ip", "@protocol"}

// New checks cfg and makes the connection pool; it does not wait for the
// database, so pipegate starts even while the database is down.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if strings.TrimSpace(cfg.Query) == "" {
		return nil, errors.New("route/sql: query: empty")
	}
	s := &Source{query: cfg.Query}
	for _, p := range namedParams {
		if strings.Contains(cfg.Query, p) {
			s.named = true
		}
	}
	if !s.named && !strings.Contains(cfg.Query, "$1") {
		return nil, fmt.Errorf("route/sql: query: uses neither $1 nor a named parameter (%s)", strings.Join(namedParams, ", "))
	}
	if s.named && strings.Contains(cfg.Query, "$1") {
		return nil, errors.New("route/sql: query: mixes $1 and named parameters (use one kind)")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("route/sql: url: %w", err)
	}
	if err := checkTLS(pc.ConnConfig); err != nil {
		return nil, fmt.Errorf("route/sql: url: %w", err)
	}
	if cfg.Password != "" {
		s.password.Store(&cfg.Password)
	}
	pc.BeforeConnect = s.beforeConnect
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pc.MinConns, pc.MinIdleConns = 0, 0 // made on demand: New connects to nothing (check-config)
	s.where = fmt.Sprintf("%s/%s", net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))), pc.ConnConfig.Database)
	s.pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("route/sql: %s: %w", s.where, err)
	}
	return s, nil
}

// checkTLS refuses a config whose TLS would not verify the server, libpq's
// sslmode prefer (its default), allow and require (without sslrootcert):
// the password would go to whoever answers. sslmode=verify-full (or
// verify-ca) verifies; sslmode=disable says plainly that it does not.
func checkTLS(cc *pgx.ConnConfig) error {
	tlss := []*tls.Config{cc.TLSConfig}
	for _, f := range cc.Fallbacks {
		tlss = append(tlss, f.TLSConfig)
	}
	for _, t := range tlss {
		if t != nil && t.InsecureSkipVerify && t.VerifyPeerCertificate == nil {
			return errors.New("the sslmode (prefer when none is given) takes any server certificate: " +
				"give sslmode=verify-full (with sslrootcert for a private CA), or sslmode=disable on a trusted link")
		}
	}
	return nil
}

// SetPassword replaces the password for the connections made from now
// on (a rotated secret, re-read on reload); open connections stay.
func (s *Source) SetPassword(pw string) { s.password.Store(&pw) }

// beforeConnect gives a new connection the current password.
func (s *Source) beforeConnect(_ context.Context, cc *pgx.ConnConfig) error {
	if pw := s.password.Load(); pw != nil {
		cc.Password = *pw
	}
	return nil
}

// Close closes the pool.
func (s *Source) Close() error {
	s.pool.Close()
	return nil
}

// Lookup runs the query for req.
func (s *Source) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	var args []any
	if s.named {
		local, domain := route.SplitAccount(req.Account)
		ip := ""
		if req.ClientAddr.IsValid() {
			ip = req.ClientAddr.Addr().Unmap().WithZone("").String() // inet takes no zone
		}
		args = []any{pgx.NamedArgs{"account": req.Account, "local": local, "domain": domain, "client_ip": ip, "protocol": protocol(req)}}
	} else {
		args = []any{req.Account}
	}
	rt, err := s.query1(ctx, args, protocol(req))
	if err != nil && ctx.Err() == nil && connGone(err) {
		// A pooled connection the server closed (restart): once more on a fresh one.
		rt, err = s.query1(ctx, args, protocol(req))
	}
	return rt, err
}

// connGone reports whether err says the connection died under the query,
// as after a restart of the database: pgconn's safe-to-retry errors, and
// the server's own notice that it terminated the connection (class 57P,
// operator intervention: admin shutdown, crash shutdown, cannot connect
// now).
func connGone(err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "57P")
}

// protocol is the request's protocol; "" is IMAP.
func protocol(req route.Request) string {
	if req.Protocol == "" {
		return "imap"
	}
	return req.Protocol
}

func (s *Source) query1(ctx context.Context, args []any, protocol string) (route.Route, error) {
	rows, err := s.pool.Query(ctx, s.query, args...)
	if err != nil {
		return route.Route{}, fmt.Errorf("route/sql: query on %s: %w", s.where, err)
	}
	defer rows.Close()
	if len(rows.FieldDescriptions()) == 0 {
		// The query failed as it ran (no columns came): its error first.
		rows.Close()
		if err := rows.Err(); err != nil {
			return route.Route{}, fmt.Errorf("route/sql: query on %s: %w", s.where, err)
		}
	}
	cols, err := columns(rows.FieldDescriptions())
	if err != nil {
		return route.Route{}, fmt.Errorf("route/sql: query on %s: %w", s.where, err)
	}
	var rt route.Route
	n := 0
	for rows.Next() {
		if n++; n > route.MaxBackends {
			return route.Route{}, fmt.Errorf("route/sql: query on %s: more than %d rows", s.where, route.MaxBackends)
		}
		vals, err := rows.Values()
		if err != nil {
			return route.Route{}, fmt.Errorf("route/sql: row %d from %s: %w", n, s.where, err)
		}
		r := rowValues(cols, vals)
		if rt.Login == "" {
			rt.Login = r["login"]
		}
		bs, err := rowBackends(r, protocol)
		if err != nil {
			return route.Route{}, fmt.Errorf("route/sql: row %d from %s: %w", n, s.where, err)
		}
		rt.Backends = append(rt.Backends, bs...)
	}
	if err := rows.Err(); err != nil {
		return route.Route{}, fmt.Errorf("route/sql: query on %s: %w", s.where, err)
	}
	if len(rt.Backends) == 0 {
		return route.Route{}, route.ErrNotFound
	}
	return rt, nil
}

var knownColumns = map[string]bool{"backend": true, "host": true, "port": true, "tls": true, "server_name": true, "login": true}

// columns names the result's columns and checks that they make a route.
func columns(fds []pgconn.FieldDescription) ([]string, error) {
	names := make([]string, len(fds))
	seen := map[string]bool{}
	for i, fd := range fds {
		n := strings.ToLower(fd.Name)
		if !knownColumns[n] {
			return nil, fmt.Errorf("column %q: unknown (want backend, or host with port, tls, server_name; and login)", fd.Name)
		}
		names[i] = n
		seen[n] = true
	}
	switch {
	case seen["backend"] && seen["host"]:
		return nil, errors.New("columns backend and host both present (want one)")
	case !seen["backend"] && !seen["host"]:
		return nil, errors.New("no backend or host column")
	case seen["backend"] && (seen["port"] || seen["tls"] || seen["server_name"]):
		return nil, errors.New("column backend with port, tls or server_name (put them in the URL)")
	}
	return names, nil
}

// rowValues turns a row into text by column name; NULL is "".
func rowValues(cols []string, vals []any) map[string]string {
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		if vals[i] == nil {
			continue
		}
		switch v := vals[i].(type) {
		case string:
			m[c] = strings.TrimSpace(v)
		case []byte:
			m[c] = strings.TrimSpace(string(v))
		default:
			m[c] = strings.TrimSpace(fmt.Sprint(v))
		}
	}
	return m
}

// rowBackends reads a row's backends; a host makes one of protocol.
func rowBackends(r map[string]string, protocol string) ([]route.Backend, error) {
	if v, ok := r["backend"]; ok {
		var out []route.Backend
		for _, f := range strings.Fields(v) {
			b, err := route.ParseBackend(f)
			if err != nil {
				return nil, fmt.Errorf("backend: %w", err)
			}
			out = append(out, b)
		}
		return out, nil
	}
	host := r["host"]
	if host == "" {
		return nil, nil // NULL host: no backend in this row
	}
	if strings.ContainsAny(host, " /?#@[]") {
		return nil, fmt.Errorf("host: %q is not a host name or address", host)
	}
	mode, err := route.ParseTLSMode(r["tls"])
	if err != nil {
		return nil, fmt.Errorf("tls: %q: %w", r["tls"], err)
	}
	port := 0 // the scheme's
	if v := r["port"]; v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port: %q: want 1-65535", v)
		}
		port = p
	}
	b, err := route.NewBackend(protocol, mode, host, port)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if v := r["server_name"]; v != "" {
		b.ServerName = v
	}
	return []route.Backend{b}, nil
}

package config

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/authhttp"
	"github.com/pipegate/pipegate/route/file"
	"github.com/pipegate/pipegate/route/ldap"
	"github.com/pipegate/pipegate/route/redis"
	"github.com/pipegate/pipegate/route/sql"
	"github.com/pipegate/pipegate/tlsconf"
)

// Defaults for remote sources (http, redis, ldap, sql).
const (
	DefaultTimeout     = 5 * time.Second
	DefaultPositiveTTL = 30 * time.Second
	DefaultNegativeTTL = 5 * time.Second
)

var common = []string{"type", "timeout", "cache", "on_error"}

var tlsFields = []string{"tls_ca", "tls_cert", "tls_key", "tls_server_name"}

// fieldsOf lists the fields each type reads, besides the common ones.
var fieldsOf = map[string][]string{
	"file":  {"path"},
	"http":  append([]string{"url", "pass_password", "headers"}, tlsFields...),
	"redis": append([]string{"url", "password_file", "key", "lowercase"}, tlsFields...),
	"ldap": append([]string{"url", "urls", "start_tls", "bind_dn", "bind_password_file", "base_dn", "scope", "filter",
		"backend_attr", "host_attr", "port_attr", "tls_attr", "server_name_attr", "login_attr", "port", "tls_mode",
		"host_attrs", "port_attrs", "ports"}, tlsFields...),
	"sql": {"url", "password_file", "query", "max_conns"},
}

// Build makes the Router for list: each source, wrapped in its timeout
// and cache, chained in order. Relative paths are taken from baseDir (the
// configuration file's directory). cache is the route_cache default for
// the remote sources; the file source is never cached (it is in memory).
//
// reload re-reads the file sources (each keeps its old table on error)
// and the password files (a source keeps its password on error; the new
// one is used by its next connections), and empties the caches; closeAll
// closes the sources' connections. Errors are *FieldError:
// "route_sources[1] (line 14).url: ...".
func Build(ctx context.Context, baseDir string, list []SourceConfig, cache CacheConfig) (r route.Router, reload func() error, closeAll func() error, err error) {
	if len(list) == 0 {
		return nil, nil, nil, errors.New("route_sources: empty (want at least one source, or routes_file)")
	}
	if field, err := cache.check(); err != nil {
		return nil, nil, nil, &FieldError{Index: -1, Field: "route_cache." + field, Err: err}
	}
	b := &builder{ctx: ctx, baseDir: baseDir, cache: cache}
	var routers []route.Router
	for i := range list {
		rt, err := b.source(i, &list[i])
		if err != nil {
			b.closeAll()
			return nil, nil, nil, err
		}
		routers = append(routers, rt)
	}
	r = routers[0]
	if len(routers) > 1 {
		r = route.Chain(routers...)
	}
	return r, b.reload, b.closeAll, nil
}

type builder struct {
	ctx     context.Context
	baseDir string
	cache   CacheConfig
	files   []*file.Source
	secrets []secretFile
	caches  []*route.Cached
	closers []func() error
}

// secretFile is a password file a source was given, read again on reload.
type secretFile struct {
	index int    // of the source in route_sources
	line  int    // of the field
	field string // "password_file", "bind_password_file"
	path  string
	set   func(password string) // the source's SetPassword
}

func (b *builder) reload() error {
	var errs []error
	for _, f := range b.files {
		if err := f.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sf := range b.secrets {
		pw, err := yamlconf.ReadSecret(sf.path)
		if err != nil {
			errs = append(errs, &FieldError{Index: sf.index, Line: sf.line, Field: sf.field, Err: err})
			continue
		}
		sf.set(pw)
	}
	for _, c := range b.caches {
		c.Purge()
	}
	return errors.Join(errs...)
}

func (b *builder) closeAll() error {
	var errs []error
	for _, c := range slices.Backward(b.closers) {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	b.closers = nil
	return errors.Join(errs...)
}

func (b *builder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.baseDir, p)
}

// FieldError is a problem with one field of a route_sources entry (Index
// >= 0), or with a key outside the list (Index -1): routes_file (Field
// ""), route_cache's (Field "route_cache.max_entries"). Error reads
// "route_sources[1] (line 14).url: problem"; a loader that prints
// "FILE:LINE: FIELD: problem" uses Line, Key and Err.
type FieldError struct {
	Index int    // entry of route_sources; -1 for routes_file or route_cache
	Line  int    // line of the field, else of the entry, in the YAML file; 0 if unknown
	Field string // "url", "path"; "" for the entry as a whole (Index -1: "" for routes_file, else the key's path)
	Err   error
}

// Key is the field's path from the top of the file: "route_sources[1].url",
// "routes_file", "route_cache.max_entries".
func (e *FieldError) Key() string {
	if e.Index < 0 {
		if e.Field != "" {
			return e.Field
		}
		return "routes_file"
	}
	k := fmt.Sprintf("route_sources[%d]", e.Index)
	if e.Field != "" {
		k += "." + e.Field
	}
	return k
}

func (e *FieldError) Error() string {
	if e.Index < 0 {
		return e.Key() + ": " + e.Err.Error()
	}
	where := fmt.Sprintf("route_sources[%d]", e.Index)
	if e.Line > 0 {
		where += fmt.Sprintf(" (line %d)", e.Line)
	}
	if e.Field != "" {
		where += "." + e.Field
	}
	return where + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

func (b *builder) source(i int, c *SourceConfig) (route.Router, error) {
	fail := func(field string, err error) error {
		line := c.Line
		key, _, _ := strings.Cut(field, "[") // urls[1]: the line of urls:
		key, _, _ = strings.Cut(key, ".")    // cache.max_entries: of cache:
		if l, ok := c.keys[key]; ok {
			line = l
		}
		return &FieldError{Index: i, Line: line, Field: field, Err: trim(field, err)}
	}
	allowed, ok := fieldsOf[c.Type]
	if !ok {
		types := make([]string, 0, len(fieldsOf))
		for t := range fieldsOf {
			types = append(types, t)
		}
		sort.Strings(types)
		return nil, fail("type", fmt.Errorf("%q: want one of %s", c.Type, strings.Join(types, ", ")))
	}
	// In the file's order, so that the same file gets the same message.
	keys := slices.SortedFunc(maps.Keys(c.keys), func(a, b string) int {
		return cmp.Or(cmp.Compare(c.keys[a], c.keys[b]), strings.Compare(a, b))
	})
	for _, k := range keys {
		if !slices.Contains(common, k) && !slices.Contains(allowed, k) {
			return nil, fail(k, fmt.Errorf("not a field of type %s (its fields: %s)", c.Type, strings.Join(allowed, ", ")))
		}
	}
	switch c.OnError {
	case "", "fail", "next":
	default:
		return nil, fail("on_error", fmt.Errorf("%q: want fail or next", c.OnError))
	}
	// What the YAML decoder lets through, or a program sets: route.Cache,
	// route.WithTimeout and pgxpool would take a negative number as the
	// default, or as "at once", without a word.
	if c.Timeout.Duration < 0 {
		return nil, fail("timeout", fmt.Errorf("negative duration %v", c.Timeout.Duration))
	}
	if c.Cache != nil {
		if field, err := c.Cache.check(); err != nil {
			return nil, fail("cache."+field, err)
		}
	}
	if c.MaxConns < 0 {
		return nil, fail("max_conns", fmt.Errorf("%d: must not be negative (0 means the default)", c.MaxConns))
	}

	var src route.Router
	remote := true
	var err error
	switch c.Type {
	case "file":
		remote = false
		if c.Path == "" {
			return nil, fail("path", errors.New("empty"))
		}
		var f *file.Source
		f, err = file.Open(b.path(c.Path))
		if err != nil {
			return nil, fail("path", err)
		}
		b.files = append(b.files, f)
		src = f
	case "http":
		if c.URL == "" {
			return nil, fail("url", errors.New("empty"))
		}
		tc, err := b.tls(c, strings.HasPrefix(c.URL, "https:"))
		if err != nil {
			return nil, fail(blockError(err, "tls", "tls_"))
		}
		s, err := authhttp.New(authhttp.Config{URL: c.URL, PassPassword: c.PassPassword, Headers: c.Headers, TLS: tc})
		if err != nil {
			return nil, fail(fieldOf(err, "url", "headers"), err)
		}
		b.closers = append(b.closers, s.Close)
		src = s
	case "redis":
		if c.URL == "" {
			return nil, fail("url", errors.New("empty"))
		}
		tc, err := b.tls(c, strings.HasPrefix(c.URL, "rediss:"))
		if err != nil {
			return nil, fail(blockError(err, "tls", "tls_"))
		}
		// The shared redis block checks url and reads password_file.
		opts, err := (&yamlconf.Redis{URL: c.URL, PasswordFile: b.path(c.PasswordFile)}).Options(nil, "redis")
		if err != nil {
			return nil, fail(blockError(err, "redis", ""))
		}
		pw := ""
		if c.PasswordFile != "" {
			pw = opts.Password
		}
		s, err := redis.New(redis.Config{URL: c.URL, Password: pw, Key: c.Key, Lowercase: c.Lowercase, TLS: tc})
		if err != nil {
			return nil, fail(fieldOf(err, "url", "key"), err)
		}
		b.closers = append(b.closers, s.Close)
		b.rereadSecret(i, c, "password_file", c.PasswordFile, s.SetPassword)
		src = s
	case "ldap":
		// Each URL checked where the file has it, before url: joins urls:.
		if c.URL != "" {
			if err := ldap.CheckURL(c.URL, c.StartTLS); err != nil {
				return nil, fail("url", err)
			}
		}
		for j, u := range c.URLs {
			if err := ldap.CheckURL(u, c.StartTLS); err != nil {
				return nil, fail(fmt.Sprintf("urls[%d]", j), err)
			}
		}
		urls := c.URLs
		if c.URL != "" {
			urls = append([]string{c.URL}, urls...)
		}
		if len(urls) == 0 {
			return nil, fail("url", errors.New("empty (want url: or urls:)"))
		}
		needTLS := c.StartTLS
		for _, u := range urls {
			needTLS = needTLS || strings.HasPrefix(u, "ldaps:")
		}
		tc, err := b.tls(c, needTLS)
		if err != nil {
			return nil, fail(blockError(err, "tls", "tls_"))
		}
		pw, err := b.secret(c.BindPasswordFile)
		if err != nil {
			return nil, fail("bind_password_file", err)
		}
		s, err := ldap.New(ldap.Config{
			URLs: urls, StartTLS: c.StartTLS, TLS: tc, BindDN: c.BindDN, BindPassword: pw,
			BaseDN: c.BaseDN, Scope: c.Scope, Filter: c.Filter,
			BackendAttr: c.BackendAttr, HostAttr: c.HostAttr, PortAttr: c.PortAttr, TLSAttr: c.TLSAttr,
			ServerNameAttr: c.ServerNameAttr, LoginAttr: c.LoginAttr, Port: c.Port, TLSMode: c.TLSMode,
			HostAttrs: c.HostAttrs, PortAttrs: c.PortAttrs, Ports: c.Ports,
			Timeout: c.Timeout.Duration,
		})
		if err != nil {
			return nil, fail(fieldOf(err, "urls", "start_tls", "base_dn", "scope", "filter", "host_attrs", "port_attrs", "ports",
				"backend_attr", "host_attr", "tls_mode", "port", "bind_dn"), err)
		}
		b.closers = append(b.closers, s.Close)
		b.rereadSecret(i, c, "bind_password_file", c.BindPasswordFile, s.SetPassword)
		src = s
	case "sql":
		if c.URL == "" {
			return nil, fail("url", errors.New("empty"))
		}
		pw, err := b.secret(c.PasswordFile)
		if err != nil {
			return nil, fail("password_file", err)
		}
		s, err := sql.New(b.ctx, sql.Config{URL: c.URL, Password: pw, Query: c.Query, MaxConns: c.MaxConns})
		if err != nil {
			return nil, fail(fieldOf(err, "query", "url"), err)
		}
		b.closers = append(b.closers, s.Close)
		b.rereadSecret(i, c, "password_file", c.PasswordFile, s.SetPassword)
		src = s
	}

	if remote {
		src = route.WithTimeout(src, orDefault(c.Timeout, DefaultTimeout))
		cc := b.cache
		if c.Cache != nil {
			cc = *c.Cache
		}
		if c.Type == "http" && c.Cache == nil {
			cc.Off = true // auth_http checks passwords: never cached unless asked for
		}
		if !cc.Off {
			pos, neg := orDefault(cc.PositiveTTL, DefaultPositiveTTL), orDefault(cc.NegativeTTL, DefaultNegativeTTL)
			cached := route.Cache(src, pos, neg, cc.MaxEntries)
			b.caches = append(b.caches, cached)
			src = cached
		}
	} else if c.Timeout.Duration != 0 || c.Cache != nil {
		field := "timeout"
		if c.Timeout.Duration == 0 {
			field = "cache" // the key the file has
		}
		return nil, fail(field, errors.New("a file source takes no timeout or cache (it is in memory)"))
	}
	if c.OnError == "next" {
		src = route.ContinueOnError(src)
	}
	return src, nil
}

// tls loads the source's TLS settings, checked as yamlconf's client TLS
// block; nil when none are set and TLS is not used (the source's defaults
// then apply). Errors are *configerr.Error naming the block's key
// ("tls.cert"; see blockError).
func (b *builder) tls(c *SourceConfig, used bool) (*tls.Config, error) {
	if c.TLSCA == "" && c.TLSCert == "" && c.TLSKey == "" && c.TLSServerName == "" {
		return nil, nil
	}
	if !used {
		return nil, &configerr.Error{Field: "tls.ca", Err: errors.New("TLS settings, but the source does not use TLS")}
	}
	block := yamlconf.ClientTLS{CA: b.path(c.TLSCA), ServerName: c.TLSServerName, Cert: b.path(c.TLSCert), Key: b.path(c.TLSKey)}
	files, err := block.Files(nil, "tls") // a nil Doc: paths as given, fields "tls.ca"
	if err != nil {
		return nil, err
	}
	tc, err := tlsconf.LoadClient(files)
	if err != nil {
		return nil, &configerr.Error{Field: "tls.ca", Err: err}
	}
	return tc, nil
}

// blockError is the first problem of err, yamlconf's errors about a
// block at field block ("tls", "redis"), as the entry's key (keyPrefix and
// the block's key: "tls.ca" -> "tls_ca") and the problem alone.
func blockError(err error, block, keyPrefix string) (field string, cause error) {
	if many, ok := err.(interface{ Unwrap() []error }); ok && len(many.Unwrap()) > 0 {
		err = many.Unwrap()[0]
	}
	if ce, ok := errors.AsType[*configerr.Error](err); ok {
		return keyPrefix + strings.TrimPrefix(ce.Field, block+"."), ce.Err
	}
	return keyPrefix + "url", err
}

// secret reads a password file (password_file, bind_password_file) as
// yamlconf reads secrets; "" is none. The source gets the password, not
// the file.
func (b *builder) secret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	return yamlconf.ReadSecret(b.path(path))
}

// rereadSecret has reload read the password file at path again, if any,
// and give the password to set.
func (b *builder) rereadSecret(i int, c *SourceConfig, field, path string, set func(string)) {
	if path == "" {
		return
	}
	line := c.Line
	if l, ok := c.keys[field]; ok {
		line = l
	}
	b.secrets = append(b.secrets, secretFile{index: i, line: line, field: field, path: b.path(path), set: set})
}

// orDefault is d, or def when d is absent or 0.
func orDefault(d yamlconf.Duration, def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

// fieldOf picks the field a source's error is about from the yaml name it
// mentions ("route/ldap: base_dn: ..."), else the first candidate.
func fieldOf(err error, candidates ...string) string {
	msg := err.Error()
	for _, c := range candidates {
		if strings.Contains(msg, " "+c+":") || strings.Contains(msg, " "+c+" ") || strings.Contains(msg, " "+c+"[") {
			return c
		}
	}
	return candidates[0]
}

// trim drops the "route/xxx: " and "field: " prefixes a source puts on
// its errors, since the FieldError says them.
func trim(field string, err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "route/") {
		return err
	}
	if i := strings.Index(msg, ": "); i > 0 {
		msg = msg[i+2:]
	}
	msg = strings.TrimPrefix(msg, field+": ")
	return errors.New(msg)
}

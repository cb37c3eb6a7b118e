// Package config builds pipegate's route lookup from the route_sources
// list of the daemon's YAML configuration (docs/routing.md describes each
// source).
//
//	var cfg struct {
//		RoutesFile   string                `yaml:"routes_file"`
//		RouteSources []config.SourceConfig `yaml:"route_sources"`
//		RouteCache   config.CacheConfig    `yaml:"route_cache"`
//	}
//	... decode the file with KnownFields(true) ...
//	list := cfg.RouteSources
//	if cfg.RoutesFile != "" { // the shorthand for one file source
//		list = append([]config.SourceConfig{{Type: "file", Path: cfg.RoutesFile}}, list...)
//	}
//	router, reload, closeSources, err := config.Build(ctx, filepath.Dir(configFile), list, cfg.RouteCache)
//	if err != nil {
//		log.Fatalf("%s: %v", configFile, err) // "route_sources[1] (line 14).url: ..."
//	}
//	defer closeSources()
//	// on SIGHUP: if err := reload(); err != nil { log.Print(err) }
//
// Open does the above for a daemon: routes_file first, then route_sources,
// with backend_tls.server_name for the backends whose route names no
// server; its *Routes is the Router, with Reload and Close.
//
// Build connects to nothing: a source that is down at start is reported
// by the first lookups (NO [UNAVAILABLE]), not by Build, so Build is also
// what `pipegate check-config` runs.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SourceConfig is one entry of route_sources. Type selects the source;
// each type reads only its own fields (see docs/routing.md), and a field
// of another type is an error.
type SourceConfig struct {
	Type string `yaml:"type"` // file, http, redis, ldap, sql

	// Common to every type.
	Timeout Duration     `yaml:"timeout"`  // per lookup; default 5s (file: none)
	Cache   *CacheConfig `yaml:"cache"`    // overrides route_cache for this source; "cache: false" turns it off
	OnError string       `yaml:"on_error"` // "fail" (default): a failure ends the lookup; "next": ask the next source

	// file
	Path string `yaml:"path"` // relative to the configuration file's directory

	// http, redis, sql: the service; ldap: one server (or urls:)
	URL  string   `yaml:"url"`
	URLs []string `yaml:"urls"` // ldap: servers tried in order

	// http
	PassPassword bool              `yaml:"pass_password"`
	Headers      map[string]string `yaml:"headers"`

	// TLS to the source: http over https, ldaps:// and StartTLS, rediss://
	// (sql: sslmode and sslrootcert in the URL)
	TLSCA         string `yaml:"tls_ca"`          // CA file; default: the system roots
	TLSCert       string `yaml:"tls_cert"`        // client certificate, if the source wants one
	TLSKey        string `yaml:"tls_key"`         // and its key
	TLSServerName string `yaml:"tls_server_name"` // name to verify; default: the URL's host

	// redis, sql
	PasswordFile string `yaml:"password_file"` // first line is the password

	// redis
	Key       string `yaml:"key"` // key template; default "route:%u"
	Lowercase bool   `yaml:"lowercase"`

	// ldap
	StartTLS         bool   `yaml:"start_tls"`
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BaseDN           string `yaml:"base_dn"`
	Scope            string `yaml:"scope"`
	Filter           string `yaml:"filter"`
	BackendAttr      string `yaml:"backend_attr"`
	HostAttr         string `yaml:"host_attr"`
	PortAttr         string `yaml:"port_attr"`
	TLSAttr          string `yaml:"tls_attr"`
	ServerNameAttr   string `yaml:"server_name_attr"`
	LoginAttr        string `yaml:"login_attr"`
	Port             int    `yaml:"port"`
	TLSMode          string `yaml:"tls_mode"`
	// per protocol (imap, pop3, sieve, submission) with host_attr
	HostAttrs map[string]string `yaml:"host_attrs"`
	PortAttrs map[string]string `yaml:"port_attrs"`
	Ports     map[string]int    `yaml:"ports"`

	// sql
	Query    string `yaml:"query"`
	MaxConns int32  `yaml:"max_conns"`

	// Line is where the entry starts in the YAML file (0 if not from YAML).
	Line int `yaml:"-"`
	// keys are the fields set in YAML, with their lines.
	keys map[string]int
}

// CacheConfig is an in-process cache in front of a source.
type CacheConfig struct {
	Off         bool     `yaml:"-"`            // "cache: false"
	PositiveTTL Duration `yaml:"positive_ttl"` // how long a route is kept; default 30s
	NegativeTTL Duration `yaml:"negative_ttl"` // how long "no route" is kept; default 5s
	MaxEntries  int      `yaml:"max_entries"`  // default 10000
}

// Duration is a time.Duration written as "30s", "2m" or "1h30m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &nodeError{node: n, err: errors.New("want a duration such as 5s")}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &nodeError{node: n, err: fmt.Errorf("%q: want a duration such as 5s or 1m30s", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads "cache: false", "cache: true" or a mapping.
func (c *CacheConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return &nodeError{node: n, what: "cache", err: errors.New("want true, false or a mapping (positive_ttl, negative_ttl, max_entries)")}
		}
		*c = CacheConfig{Off: !on}
		return nil
	}
	if err := checkKeys(n, "cache", reflect.TypeOf(CacheConfig{})); err != nil {
		return locate(n, err)
	}
	type plain CacheConfig
	return locate(n, n.Decode((*plain)(c)))
}

// UnmarshalYAML decodes a source entry, rejecting unknown fields (a
// custom unmarshaler does not get the decoder's KnownFields) and
// remembering lines for Build's messages.
func (c *SourceConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &nodeError{node: n, err: errors.New("a route source is a mapping (type: file|http|redis|ldap|sql, ...)")}
	}
	if err := checkKeys(n, "route source", reflect.TypeOf(SourceConfig{})); err != nil {
		return locate(n, err)
	}
	type plain SourceConfig
	if err := n.Decode((*plain)(c)); err != nil {
		return locate(n, err)
	}
	c.Line = n.Line
	c.keys = map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		c.keys[n.Content[i].Value] = n.Content[i].Line
	}
	return nil
}

// yamlKeys lists the yaml names of t's fields.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func checkKeys(n *yaml.Node, what string, t reflect.Type) error {
	known := yamlKeys(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(known, k.Value) {
			slices.Sort(known)
			return &nodeError{node: k, key: k.Value, what: what,
				err: fmt.Errorf("unknown field (want one of: %s)", strings.Join(known, ", "))}
		}
	}
	return nil
}

// nodeError is a problem found while decoding, at node (a key, or a
// value) of the YAML tree. Error reads "line 3: route source: unknown
// field "pth" (want one of: ...)"; a loader that names fields
// (internal/yamlconf) takes Position and the cause instead.
type nodeError struct {
	node *yaml.Node
	key  string // the key at fault, when node is a key
	what string // "route source", "cache"; "" for a value
	path string // node's path from the value the loader decoded, set by locate
	err  error
}

func (e *nodeError) Error() string {
	msg := e.err.Error()
	if e.key != "" {
		msg = fmt.Sprintf("unknown field %q (%s", e.key, strings.TrimPrefix(msg, "unknown field ("))
	}
	if e.what != "" {
		msg = e.what + ": " + msg
	}
	return fmt.Sprintf("line %d: %s", e.node.Line, msg)
}

func (e *nodeError) Unwrap() error { return e.err }

// Position is the line of the problem and its field below the value the
// loader decoded ("cache.ttl"; "" for that value itself).
func (e *nodeError) Position() (line int, field string) { return e.node.Line, e.path }

// locate sets the path of a *nodeError found below n, the value being
// decoded; an outer UnmarshalYAML calls it last, so the path starts at the
// value the loader asked for.
func locate(n *yaml.Node, err error) error {
	ne, ok := err.(*nodeError)
	if !ok {
		return err
	}
	if p, found := pathTo(n, ne.node, 0); found {
		ne.path = p
	}
	return ne
}

// pathTo finds target among the keys and values below mapping n.
func pathTo(n, target *yaml.Node, depth int) (string, bool) {
	if n.Kind != yaml.MappingNode || depth > 8 {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k == target || v == target {
			return k.Value, true
		}
		if p, ok := pathTo(v, target, depth+1); ok {
			return k.Value + "." + p, true
		}
	}
	return "", false
}

// Package config builds pipegate's route lookup from the route_sources
// list of the daemon's YAML configuration (docs/routing.md describes each
// source).
//
//	var cfg struct {
//		RoutesFile   string                `yaml:"routes_file"`
//		RouteSources []config.SourceConfig `yaml:"route_sources"`
//		RouteCache   config.CacheConfig    `yaml:"route_cache"`
//	}
//	f, err := os.Open(configFile)
//	if err != nil {
//		log.Fatal(err)
//	}
//	dec := yaml.NewDecoder(f) // go.yaml.in/yaml/v3
//	dec.KnownFields(true)     // a misspelt key is an error
//	if err := dec.Decode(&cfg); err != nil {
//		log.Fatalf("%s: %v", configFile, err)
//	}
//	f.Close()
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
// (pipegate's daemons read their files with internal/yamlconf, whose
// errors name the file, line and field: "pipegate.yaml:3:
// route_sources[0].pth: unknown field (want one of: ...)".) The duration
// fields (SourceConfig.Timeout, CacheConfig's TTLs) are set from YAML; a
// program sets them through their Duration field.
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
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route"
)

// SourceConfig is one entry of route_sources. Type selects the source;
// each type reads only its own fields (see docs/routing.md), and a field
// of another type is an error.
type SourceConfig struct {
	Type string `yaml:"type"` // file, http, redis, ldap, sql

	// Common to every type.
	Timeout yamlconf.Duration `yaml:"timeout"`  // per lookup; default 5s (file: none)
	Cache   *CacheConfig      `yaml:"cache"`    // overrides route_cache for this source; "cache: false" turns it off
	OnError string            `yaml:"on_error"` // "fail" (default): a failure ends the lookup; "next": ask the next source

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
	Off         bool              `yaml:"-"`            // "cache: false"
	PositiveTTL yamlconf.Duration `yaml:"positive_ttl"` // how long a route is kept; default 30s
	NegativeTTL yamlconf.Duration `yaml:"negative_ttl"` // how long "no route" is kept; default 5s
	MaxEntries  int               `yaml:"max_entries"`  // default 10000; negative is refused
}

// UnmarshalYAML reads "cache: false", "cache: true" or a mapping. Errors
// are *yamlconf.NodeError.
func (c *CacheConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return yamlconf.NodeErrorf(n, "want true, false or a mapping (max_entries, negative_ttl, positive_ttl)")
		}
		*c = CacheConfig{Off: !on}
		return nil
	}
	type plain CacheConfig
	if err := yamlconf.DecodeNode(n, (*plain)(c)); err != nil {
		return err
	}
	if field, err := c.check(); err != nil {
		return &yamlconf.NodeError{Line: valueLine(n, field), Field: field, Err: err}
	}
	return nil
}

// check refuses what the YAML decoder lets through: a negative
// max_entries (route.Cache would take it as the default) or TTL (written
// by a program; the file's are refused as durations). It returns the
// field at fault.
func (c CacheConfig) check() (field string, err error) {
	switch {
	case c.MaxEntries < 0:
		return "max_entries", fmt.Errorf("%d: must not be negative (0 means the default, %d)", c.MaxEntries, route.DefaultCacheEntries)
	case c.PositiveTTL.Duration < 0:
		return "positive_ttl", fmt.Errorf("negative duration %v", c.PositiveTTL.Duration)
	case c.NegativeTTL.Duration < 0:
		return "negative_ttl", fmt.Errorf("negative duration %v", c.NegativeTTL.Duration)
	}
	return "", nil
}

// valueLine is the line of key's value in mapping n; n's own when n does
// not hold key itself (a merge key brought it).
func valueLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Line
		}
	}
	return n.Line
}

// UnmarshalYAML decodes a source entry with yamlconf's checks (a custom
// unmarshaler does not get the decoder's KnownFields), remembering lines
// for Build's messages. Errors are *yamlconf.NodeError: yamlconf.Load
// reports them as "FILE:LINE: route_sources[1].pth: unknown field (...)".
func (c *SourceConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return yamlconf.NodeErrorf(n, "a route source is a mapping (type: file|http|redis|ldap|sql, ...)")
	}
	type plain SourceConfig
	if err := yamlconf.DecodeNode(n, (*plain)(c)); err != nil {
		return err
	}
	c.Line = n.Line
	c.keys = map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		c.keys[n.Content[i].Value] = n.Content[i].Line
	}
	return nil
}

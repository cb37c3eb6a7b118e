package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"pipegate/forward"
	"pipegate/listener"
	"pipegate/tlsconf"
)

// fwdFile is a forward config file. Field names are the flag names.
type fwdFile struct {
	MetricsAddr  string    `yaml:"metrics-addr"`
	LogFormat    string    `yaml:"log-format"`
	LogLevel     string    `yaml:"log-level"`
	DrainTimeout string    `yaml:"drain-timeout"`
	Forwards     []fwdSpec `yaml:"forwards"`
}

// fwdSpec is one forward as written by the user, on the command line or in
// a config file; fwdBuild turns it into a forward.Config.
type fwdSpec struct {
	Name             string     `yaml:"name"`
	Listen           string     `yaml:"listen"`
	To               []string   `yaml:"to"`
	SNI              []fwdRoute `yaml:"sni"`
	Balance          string     `yaml:"balance"`
	TLSCert          string     `yaml:"tls-cert"`
	TLSKey           string     `yaml:"tls-key"`
	ClientCA         string     `yaml:"client-ca"`
	TLSTicketKeys    string     `yaml:"tls-ticket-keys"`
	ToTLS            bool       `yaml:"to-tls"`
	ToCA             string     `yaml:"to-ca"`
	ToServerName     string     `yaml:"to-server-name"`
	ToCert           string     `yaml:"to-cert"`
	ToKey            string     `yaml:"to-key"`
	SendProxy        string     `yaml:"send-proxy"`
	AcceptProxy      bool       `yaml:"accept-proxy"`
	TrustedProxy     []string   `yaml:"trusted-proxy"`
	MaxConns         int        `yaml:"max-conns"`
	MaxConnsPerIP    int        `yaml:"max-conns-per-ip"`
	DialTimeout      string     `yaml:"dial-timeout"`
	HandshakeTimeout string     `yaml:"handshake-timeout"`
	IdleTimeout      string     `yaml:"idle-timeout"`
	MaxLifetime      string     `yaml:"max-lifetime"`
	HalfCloseLinger  string     `yaml:"half-close-linger"`
	Backoff          string     `yaml:"backoff"`
	TCPKeepAlive     string     `yaml:"tcp-keepalive"`
}

// fwdRoute is an SNI route: `--sni NAME=ADDR[,ADDR...]` on the command
// line, {server-name: NAME, to: [ADDR...]} in a file.
type fwdRoute struct {
	ServerName string   `yaml:"server-name"`
	To         []string `yaml:"to"`
}

// fwdLoaded is a checked configuration, ready to run.
type fwdLoaded struct {
	metricsAddr  string
	logFormat    string
	logLevel     string
	drainTimeout time.Duration
	forwards     []forward.Config
}

// fwdDefaultDrain is --drain-timeout's default.
const fwdDefaultDrain = 30 * time.Second

// fwdTLSCache keeps the server TLS configurations across reloads, so that
// a reload re-reads the certificate files of the same tlsconf.Server
// (keeping its session ticket keys) instead of starting afresh.
type fwdTLSCache map[tlsconf.ServerFiles]*tlsconf.Server

// fwdBuild turns a spec into a forward.Config, loading certificate files.
// Errors are *forward.FieldError naming the flag/field at fault.
func fwdBuild(sp fwdSpec, cache fwdTLSCache) (forward.Config, error) {
	cfg := forward.Config{
		Name:          sp.Name,
		Listen:        sp.Listen,
		Upstreams:     sp.To,
		SendProxy:     sp.SendProxy,
		AcceptProxy:   sp.AcceptProxy,
		MaxConns:      sp.MaxConns,
		MaxConnsPerIP: sp.MaxConnsPerIP,
	}
	fe := func(field string, err error) error { return &forward.FieldError{Field: field, Err: err} }
	if sp.Listen == "" {
		return cfg, fe("listen", errors.New("missing (want host:port or unix:/path)"))
	}
	for _, r := range sp.SNI {
		cfg.Routes = append(cfg.Routes, forward.Route{ServerName: r.ServerName, Upstreams: r.To})
	}
	var err error
	if cfg.Balance, err = forward.ParseBalance(sp.Balance); err != nil {
		return cfg, fe("balance", err)
	}
	for i, text := range sp.TrustedProxy {
		p, err := listener.ParseCIDRs("trusted-proxy", []string{text})
		if err != nil {
			return cfg, &forward.FieldError{Field: fmt.Sprintf("trusted-proxy[%d]", i), Err: fwdCIDRError(text, err)}
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p...)
	}
	for _, d := range []struct {
		field string
		text  string
		dst   *time.Duration
	}{
		{"dial-timeout", sp.DialTimeout, &cfg.DialTimeout},
		{"handshake-timeout", sp.HandshakeTimeout, &cfg.HandshakeTimeout},
		{"idle-timeout", sp.IdleTimeout, &cfg.IdleTimeout},
		{"max-lifetime", sp.MaxLifetime, &cfg.MaxLifetime},
		{"half-close-linger", sp.HalfCloseLinger, &cfg.HalfCloseLinger},
		{"backoff", sp.Backoff, &cfg.Backoff},
		{"tcp-keepalive", sp.TCPKeepAlive, &cfg.TCPKeepAlive},
	} {
		if *d.dst, err = fwdDuration(d.text); err != nil {
			return cfg, fe(d.field, err)
		}
	}
	// Check every named file before loading, so the error names the field.
	for _, f := range []struct{ field, path string }{
		{"tls-cert", sp.TLSCert}, {"tls-key", sp.TLSKey}, {"client-ca", sp.ClientCA},
		{"tls-ticket-keys", sp.TLSTicketKeys}, {"to-ca", sp.ToCA}, {"to-cert", sp.ToCert}, {"to-key", sp.ToKey},
	} {
		if f.path == "" {
			continue
		}
		if err := fwdReadable(f.path); err != nil {
			return cfg, fe(f.field, err)
		}
	}
	switch {
	case sp.TLSCert != "" && sp.TLSKey == "":
		return cfg, fe("tls-key", errors.New("missing (tls-cert is set)"))
	case sp.TLSKey != "" && sp.TLSCert == "":
		return cfg, fe("tls-cert", errors.New("missing (tls-key is set)"))
	case sp.TLSCert == "" && (sp.ClientCA != "" || sp.TLSTicketKeys != ""):
		return cfg, fe("tls-cert", errors.New("missing (client-ca and tls-ticket-keys need TLS termination)"))
	case sp.TLSCert != "":
		files := tlsconf.ServerFiles{Cert: sp.TLSCert, Key: sp.TLSKey, ClientCA: sp.ClientCA, TicketKeys: sp.TLSTicketKeys}
		srv := cache[files]
		if srv != nil {
			err = srv.Reload()
		} else {
			srv, err = tlsconf.LoadServer(files)
		}
		if err != nil {
			return cfg, fe("tls-cert", err)
		}
		cache[files] = srv
		cfg.TLS = srv.Config()
	}
	if !sp.ToTLS && (sp.ToCA != "" || sp.ToServerName != "" || sp.ToCert != "" || sp.ToKey != "") {
		return cfg, fe("to-tls", errors.New("not set, but to-ca, to-server-name, to-cert or to-key is"))
	}
	if sp.ToTLS {
		if cfg.UpstreamTLS, err = tlsconf.LoadClient(tlsconf.ClientFiles{
			CA: sp.ToCA, Cert: sp.ToCert, Key: sp.ToKey, ServerName: sp.ToServerName,
		}); err != nil {
			field := "to-cert"
			if strings.HasPrefix(err.Error(), "tls CA") {
				field = "to-ca"
			}
			return cfg, fe(field, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// fwdCIDRError is a clean message for a bad trusted-proxy entry: the text,
// then the parser's reason without the Go function names around it.
func fwdCIDRError(text string, err error) error {
	reason := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		reason = inner.Error()
	}
	if i := strings.LastIndex(reason, "): "); i >= 0 {
		reason = reason[i+3:] // netip: `ParseAddr("x"): unexpected character (at "x")`
	}
	return fmt.Errorf("%q is not an IP address or CIDR prefix (%s)", strings.TrimSpace(text), reason)
}

func fwdDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 500ms, 30s, 5m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func fwdReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%s: empty file", path)
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// fwdKey identifies a forward across reloads: its name, else its listen
// address.
func fwdKey(c forward.Config) string {
	if c.Name != "" {
		return "name " + c.Name
	}
	return "listen " + c.Listen
}

// fwdCheckUnique rejects two forwards with one identity (fwdKey) or on one
// address (port 0 excepted: each gets its own port).
func fwdCheckUnique(cfgs []forward.Config) (int, error) {
	listens := map[string]int{}
	keys := map[string]int{}
	for i, c := range cfgs {
		if j, ok := keys[fwdKey(c)]; ok {
			if c.Name != "" {
				return i, &forward.FieldError{Field: "name", Err: fmt.Errorf("%q is also the name of forward %d", c.Name, j)}
			}
			return i, &forward.FieldError{Field: "name", Err: fmt.Errorf("missing: forward %d listens on %s too; name both to tell them apart", j, c.Listen)}
		}
		keys[fwdKey(c)] = i
		if strings.HasSuffix(c.Listen, ":0") {
			continue
		}
		if j, ok := listens[c.Listen]; ok {
			return i, &forward.FieldError{Field: "listen", Err: fmt.Errorf("%s is also the address of forward %d", c.Listen, j)}
		}
		listens[c.Listen] = i
	}
	return 0, nil
}

// fwdLoadFile reads and checks a forward config file. Errors name the
// file, the line and the field.
func fwdLoadFile(path string, cache fwdTLSCache) (*fwdLoaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", path, fwdYAMLError(err))
	}
	var f fwdFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty file (want a forwards: list)", path)
		}
		return nil, fmt.Errorf("%s: %s", path, fwdYAMLError(err))
	}
	topErr := func(field string, err error) error {
		return fmt.Errorf("%s:%d: field %s: %v", path, fwdLine(&root, -1, field), field, err)
	}
	if len(f.Forwards) == 0 {
		return nil, topErr("forwards", errors.New("no forward given"))
	}
	l := &fwdLoaded{metricsAddr: f.MetricsAddr, logFormat: f.LogFormat, logLevel: f.LogLevel}
	if l.drainTimeout, err = fwdDuration(f.DrainTimeout); err != nil {
		return nil, topErr("drain-timeout", err)
	}
	if f.DrainTimeout == "" {
		l.drainTimeout = fwdDefaultDrain
	}
	if _, err := newLogger(io.Discard, f.LogFormat, f.LogLevel); err != nil {
		field, _, _ := strings.Cut(err.Error(), ":")
		return nil, topErr(field, errors.New(strings.TrimSpace(strings.TrimPrefix(err.Error(), field+":"))))
	}
	fieldErr := func(i int, err error) error {
		field := "forwards"
		if fe, ok := errors.AsType[*forward.FieldError](err); ok {
			field, err = fe.Field, fe.Err
		}
		name := ""
		if f.Forwards[i].Name != "" {
			name = fmt.Sprintf(" (%s)", f.Forwards[i].Name)
		}
		return fmt.Errorf("%s:%d: forwards[%d]%s: field %s: %v", path, fwdLine(&root, i, field), i, name, field, err)
	}
	for i, sp := range f.Forwards {
		cfg, err := fwdBuild(sp, cache)
		if err != nil {
			return nil, fieldErr(i, err)
		}
		l.forwards = append(l.forwards, cfg)
	}
	if i, err := fwdCheckUnique(l.forwards); err != nil {
		return nil, fieldErr(i, err)
	}
	return l, nil
}

// fwdLine returns the line of field in forwards[i] (i >= 0) or at the top
// level (i < 0); the line of the enclosing node when field is absent.
func fwdLine(root *yaml.Node, i int, field string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if i >= 0 {
		list := fwdChild(n, "forwards")
		if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
			return n.Line
		}
		n = list.Content[i]
	}
	key, elem := field, -1 // "trusted-proxy[1]": the line of that element
	if k, idx, ok := strings.Cut(strings.TrimSuffix(field, "]"), "["); ok {
		if j, err := strconv.Atoi(idx); err == nil {
			key, elem = k, j
		}
	}
	v := fwdChild(n, key)
	if v == nil {
		return n.Line
	}
	if elem >= 0 && v.Kind == yaml.SequenceNode && elem < len(v.Content) {
		return v.Content[elem].Line
	}
	return v.Line
}

func fwdChild(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}

var (
	fwdUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	fwdGoType       = regexp.MustCompile(`into (\[\])?main\.fwd\w+`)
)

// fwdYAMLError rewrites yaml's messages for users: no Go type names, one
// line per problem.
func fwdYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = fwdUnknownField.ReplaceAllString(msg, `unknown field "$1"`)
	msg = fwdGoType.ReplaceAllString(msg, "into a ${1}mapping")
	msg = strings.ReplaceAll(msg, "into a []mapping", "into a list")
	msg = strings.ReplaceAll(msg, "into []string", "into a list of strings (write [a, b])")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// checkForwardConfig validates a forward config file, certificates
// included, without listening. `pipegate check-config FILE` calls it.
func checkForwardConfig(path string) error {
	_, err := fwdLoadFile(path, fwdTLSCache{})
	return err
}

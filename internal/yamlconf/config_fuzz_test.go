package yamlconf

import (
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configtest"
)

// fuzzConfig has a field of each kind the walker checks: scalars of every
// width, durations, pointers, lists, an array, maps, an inline struct, a
// TextUnmarshaler, values that decode themselves through DecodeNode, and
// the shared blocks (TLS, Redis, a secret file).
type fuzzConfig struct {
	Name         string                 `yaml:"name"`
	MaxConns     int                    `yaml:"max_conns"`
	Small        int8                   `yaml:"small"`
	Port         uint16                 `yaml:"port"`
	Ratio        float64                `yaml:"ratio"`
	On           bool                   `yaml:"on"`
	Wait         Duration               `yaml:"wait"`
	Opt          *Duration              `yaml:"opt"`
	Inner        *fuzzInner             `yaml:"inner"`
	List         []fuzzInner            `yaml:"list"`
	Pair         [2]string              `yaml:"pair"`
	Labels       map[string]string      `yaml:"labels"`
	Limits       map[string]int         `yaml:"limits"`
	Nested       map[string][]fuzzInner `yaml:"nested"`
	Any          any                    `yaml:"any"`
	Prefix       netip.Prefix           `yaml:"prefix"`
	Entries      []fuzzEntry            `yaml:"entries"`
	PasswordFile string                 `yaml:"password_file"`
	TLS          *ServerTLS             `yaml:"tls"`
	ToTLS        *ClientTLS             `yaml:"to_tls"`
	Redis        *Redis                 `yaml:"redis"`
	FuzzCommon   `yaml:",inline"`
}

func (fuzzConfig) RenamedKeys() map[string]string { return map[string]string{"tls-cert": "tls.cert"} }

// FuzzCommon is inlined into fuzzConfig.
type FuzzCommon struct {
	LogLevel string   `yaml:"log_level"`
	Drain    Duration `yaml:"drain"`
}

type fuzzInner struct {
	Addr string    `yaml:"addr"`
	Tags []string  `yaml:"tags"`
	Wait *Duration `yaml:"wait"`
}

// fuzzEntry decodes itself as route_sources entries do.
type fuzzEntry struct {
	Name    string     `yaml:"name"`
	Timeout Duration   `yaml:"timeout"`
	Cache   *fuzzCache `yaml:"cache"`
	Line    int        `yaml:"-"`
}

func (e *fuzzEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return NodeErrorf(n, "an entry is a mapping")
	}
	type plain fuzzEntry
	if err := DecodeNode(n, (*plain)(e)); err != nil {
		return err
	}
	e.Line = n.Line
	return nil
}

// fuzzCache is "cache: false" or a mapping, as route_cache.
type fuzzCache struct {
	Off bool     `yaml:"-"`
	TTL Duration `yaml:"ttl"`
	Max int      `yaml:"max"`
}

func (c *fuzzCache) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return NodeErrorf(n, "want true, false or a mapping")
		}
		*c = fuzzCache{Off: !on}
		return nil
	}
	type plain fuzzCache
	return DecodeNode(n, (*plain)(c))
}

// fuzzSeeds are good files for fuzzConfig, naming the fixture's files
// (TestFuzzSeeds).
var fuzzSeeds = []string{
	"",
	"name: web\nmax_conns: 3\nsmall: -128\nport: 65535\nratio: .nan\non: true\nwait: 1m30s\nopt: 0s\n",
	"inner: {addr: a, tags: [x, y], wait: 2s}\nlist:\n  - addr: b\n  - {tags: []}\npair: [a, b]\n",
	"labels: {a: b}\nlimits: {x: 1}\nnested:\n  k:\n    - addr: c\nany: {a: [1, 2.5, null]}\nprefix: 10.0.0.0/8\n",
	"entries:\n  - name: a\n    timeout: 3s\n    cache: false\n  - cache: {ttl: 1s, max: 10}\n",
	"any: &d {addr: a, tags: [x]}\ninner:\n  <<: *d\nlist: [*d, *d]\n",
	"password_file: pw\nlog_level: debug\ndrain: 5s\n",
	"tls:\n  cert: server.crt\n  key: server.key\n  client_ca: ca.crt\n  ticket_keys: ticket.keys\n  curves: [X25519, prime256v1]\n",
	"tls:\n  certs:\n    - {cert: server.crt, key: server.key}\n    - {cert: client.crt, key: client.key}\n",
	"to_tls: {ca: ca.crt, server_name: up.example, cert: client.crt, key: client.key}\n",
	"redis:\n  addr: 127.0.0.1:6379\n  password_file: pw\n  db: 2\n  tls: {ca: ca.crt}\n",
	"redis: {url: \"rediss://127.0.0.1:6380/3\"}\n",
}

// fuzzBadSeeds are files with problems, each at its line.
var fuzzBadSeeds = []string{
	"name: a\nnmae: b\nmax-conns: 3\ntls-cert: x\nwait: -1s\nsmall: 300\nport: -1\n",
	"name: a\n---\nname: b\n",
	"name: [\n",
	"entries:\n  - x\n  - {name: a, nmae: b, cache: maybe}\n",
	"tls: {cert: nope.crt, key: empty, curves: [brainpoolP256r1]}\nredis: {url: http://x, addr: y}\npassword_file: empty\n",
	"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nnested: {k: [*b, *b, *b, *b]}\n",
	// Tags yaml cannot resolve, which it reports without a line.
	"name: !!int x\n", "list: [{addr: !!bool y}]\n", "any: {a: [!!float z]}\n", "pair: [!!null x]\n", "prefix: !!int x\n",
	"entries: [{name: !!int x}]\n", "entries: [!!null {name: a}]\n",
	"inner: !!null {addr: a}\n",
	"name: !!str 3\nmax_conns: !!int \"3\"\non: !!bool true\nany: !!map {a: !!seq [b]}\ntls: !foo {cert: x}\n",
}

// FuzzLoad: any file loads into a config or gives an error, never a
// panic; every problem names the file and its line
// (configtest.CheckProblems), never a secret read from a file; a
// duration is never negative; the shared blocks (TLS files, Redis, a
// secret) give their files or problems in the same form; loading twice
// gives the same config, or the same error; loading starts no goroutine.
func FuzzLoad(f *testing.F) {
	fixture := configtest.Fixture(f)
	configtest.AddSeeds(f, fuzzSeeds, fuzzBadSeeds)
	configtest.AddDocExamples(f, "../..")
	f.Fuzz(func(t *testing.T, data []byte) {
		configtest.SkipKernelFile(t, data)
		path := configtest.WriteFile(t, fixture, "pipegate.yaml", data)
		before := configtest.Goroutines()
		var c fuzzConfig
		doc, err := Load(path, &c)
		var c2 fuzzConfig
		doc2, err2 := Load(path, &c2)
		configtest.CheckNoGoroutine(t, before, "Load")
		configtest.SameOutcome(t, err, err2, c, c2)
		if err != nil {
			if doc != nil {
				t.Fatalf("both a Doc and an error: %v", err)
			}
			configtest.CheckSecretless(t, data, err)
			configtest.CheckProblems(t, path, data, err, nil)
			return
		}
		if doc == nil || doc.File != path || !reflect.DeepEqual(doc, doc2) {
			t.Fatalf("Doc %+v, then %+v", doc, doc2)
		}
		max := configtest.MaxLine(data)
		for _, d := range []Duration{c.Wait, c.Drain, deref(c.Opt)} {
			if d.Duration < 0 || (d.Given && (d.Line < 1 || d.Line > max)) || (!d.Given && d != (Duration{})) {
				t.Fatalf("duration %+v", d)
			}
		}
		for _, e := range c.Entries {
			if e.Line < 1 || e.Line > max || e.Timeout.Duration < 0 {
				t.Fatalf("entry %+v", e)
			}
		}
		// The blocks check their files; problems name file, line and field.
		var errs []error
		if c.TLS != nil {
			_, err := c.TLS.Files(doc, "tls")
			errs = append(errs, err)
		}
		if c.ToTLS != nil {
			_, err := c.ToTLS.Files(doc, "to_tls")
			errs = append(errs, err)
		}
		if c.Redis != nil {
			opts, err := c.Redis.Options(doc, "redis")
			if (opts == nil) == (err == nil) {
				t.Fatalf("Redis.Options: %+v and %v", opts, err)
			}
			errs = append(errs, err)
		}
		if c.PasswordFile != "" {
			s, err := doc.Secret("password_file", c.PasswordFile)
			if (s == "") == (err == nil) || strings.ContainsAny(s, "\n") {
				t.Fatalf("Secret: %q, %v", s, err)
			}
			errs = append(errs, err)
		}
		configtest.CheckSecretless(t, data, errors.Join(errs...))
		configtest.CheckProblems(t, path, data, errors.Join(errs...), doc.Line)
	})
}

// TestFuzzSeeds: the good seeds load, blocks included, so that the
// fuzzer starts from files that get past every check.
func TestFuzzSeeds(t *testing.T) {
	fixture := configtest.Fixture(t)
	for _, s := range fuzzSeeds {
		path := configtest.WriteFile(t, fixture, "pipegate.yaml", []byte(s))
		var c fuzzConfig
		doc, err := Load(path, &c)
		if err == nil && c.TLS != nil {
			_, err = c.TLS.Files(doc, "tls")
		}
		if err == nil && c.ToTLS != nil {
			_, err = c.ToTLS.Files(doc, "to_tls")
		}
		if err == nil && c.Redis != nil {
			_, err = c.Redis.Options(doc, "redis")
		}
		if err == nil && c.PasswordFile != "" {
			_, err = doc.Secret("password_file", c.PasswordFile)
		}
		if err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzParseDuration: a duration or an error quoting the text, never a
// negative one; what it parses, its String parses back to.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "0s", "500ms", "1h30m", "-1s", "5 min", "1.5h", "9223372036854775807ns", "-0", ".5s", "1e3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("ParseDuration(%q) = %v, %v", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; its String %q parses to %v, %v", s, d, d.String(), back, err)
		}
	})
}

// TestLoadAliasBomb: aliases that expand to a great many values are
// refused at a line, quickly, rather than walked one by one.
func TestLoadAliasBomb(t *testing.T) {
	rep := func(s string) string { return "[" + strings.TrimSuffix(strings.Repeat(s+", ", 1000), ", ") + "]" }
	data := "any:\n  a: &a " + rep("x") + "\n  b: &b " + rep("*a") + "\nnested:\n  k: " + rep("{tags: *a}") + "\nlist: " + rep("{tags: *b}") + "\n"
	var c struct {
		Any    any                         `yaml:"any"`
		Nested map[string][]fuzzInner      `yaml:"nested"`
		List   []struct{ Tags [][]string } `yaml:"list"`
	}
	_, err := Decode("f.yaml", []byte(data), &c)
	if err == nil || !strings.Contains(err.Error(), "f.yaml:") || !strings.Contains(err.Error(), "aliases expand to more than") {
		t.Fatalf("err = %.300v", err)
	}
	configtest.CheckProblems(t, "f.yaml", []byte(data), err, nil)
}

func deref(d *Duration) Duration {
	if d == nil {
		return Duration{}
	}
	return *d
}

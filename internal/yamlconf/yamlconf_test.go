package yamlconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/tlsconf"
)

type testInner struct {
	Addr string   `yaml:"addr"`
	Tags []string `yaml:"tags"`
}

type testConfig struct {
	Name     string            `yaml:"name"`
	MaxConns int               `yaml:"max_conns"`
	On       bool              `yaml:"on"`
	Wait     Duration          `yaml:"wait"`
	Inner    *testInner        `yaml:"inner"`
	List     []testInner       `yaml:"list"`
	Labels   map[string]string `yaml:"labels"`
	TLS      *ServerTLS        `yaml:"tls"`
}

func (testConfig) RenamedKeys() map[string]string { return map[string]string{"tls-cert": "tls.cert"} }

func TestDecodeProblems(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       []string // each a whole configerr message after "f.yaml"
	}{
		{"unknown", "name: a\nnmae: b\n", []string{":2: nmae: unknown field (want one of: inner, labels, list, max_conns, name, on, tls, wait)"}},
		{"kebab", "max-conns: 3\n", []string{":1: max-conns: renamed to max_conns"}},
		{"renamed", "tls-cert: x\n", []string{":1: tls-cert: renamed to tls.cert"}},
		{"nested unknown", "list:\n  - addr: a\n  - adr: b\n", []string{":3: list[1].adr: unknown field (want one of: addr, tags)"}},
		{"bool", "on: yes please\n", []string{`:1: on: want true or false, not "yes please"`}},
		{"int", "max_conns: many\n", []string{`:1: max_conns: want a whole number, not "many"`}},
		{"duration", "wait: 5 min\n", []string{`:1: wait: invalid duration "5 min" (want e.g. 500ms, 30s, 5m)`}},
		{"negative", "wait: -1s\n", []string{`:1: wait: negative duration "-1s"`}},
		{"list for string", "name: [a, b]\n", []string{":1: name: want a text value, not a list"}},
		{"string for list", "inner:\n  tags: a\n", []string{`:2: inner.tags: want a list (write [a, b] or one "- item" per line), not "a"`}},
		{"scalar for struct", "inner: x\n", []string{`:1: inner: want a mapping (keys: addr, tags), not "x"`}},
		{"twice", "name: a\nname: b\n", []string{":2: name: given twice (also on line 1)"}},
		{"two documents", "name: a\n---\nname: b\n", []string{":3: more than one YAML document (a second --- ?)"}},
		{"several", "nmae: a\nmax_conns: x\n", []string{":1: nmae: unknown field", `:2: max_conns: want a whole number, not "x"`}},
		{"merge", "base: &b {addr: a, bad: 1}\n", []string{":1: base: unknown field"}},
		// yaml.v3 truncates a fraction to a whole number: refused instead.
		{"fraction", "max_conns: 1.5\n", []string{`:1: max_conns: want a whole number, not "1.5"`}},
		{"fraction up", "max_conns: 2.7\n", []string{`:1: max_conns: want a whole number, not "2.7"`}},
		{"float notation", "max_conns: 1e3\n", []string{`:1: max_conns: want a whole number, not "1e3" (write 1000)`}},
		{"float tag", "max_conns: !!float 3\n", []string{`:1: max_conns: want a whole number, not "3" (write 3)`}},
		{"infinity", "max_conns: -.inf\n", []string{`:1: max_conns: want a whole number, not "-.inf"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			_, err := Decode("f.yaml", []byte(tt.yaml), &c)
			if err == nil {
				t.Fatalf("no error")
			}
			var msgs []string
			for line := range strings.SplitSeq(err.Error(), "\n") {
				msgs = append(msgs, line)
			}
			if len(msgs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(msgs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(msgs[i], "f.yaml"+w) {
					t.Errorf("problem %d:\n got %s\nwant f.yaml%s", i, msgs[i], w)
				}
			}
			if _, ok := errors.AsType[*configerr.Error](err); !ok {
				t.Errorf("not a *configerr.Error: %T", err)
			}
		})
	}
}

// TestWholeNumbers: integer fields of every kind take integers as YAML
// writes them (hex, underscores) and refuse fractions, float notation,
// and values out of their range; float fields take both; a time.Duration
// field keeps yaml's "5s".
func TestWholeNumbers(t *testing.T) {
	type numbers struct {
		U  uint16        `yaml:"u"`
		I8 int8          `yaml:"i8"`
		U8 uint8         `yaml:"u8"`
		F  float64       `yaml:"f"`
		D  time.Duration `yaml:"d"`
	}
	for _, tt := range []struct {
		yaml string
		want numbers
	}{
		{"u: 0x10\ni8: -128\nu8: 1_0\n", numbers{U: 16, I8: -128, U8: 10}},
		{"u: 65535\nf: 3\n", numbers{U: 65535, F: 3}},
		{"f: 1.5\nd: 5s\n", numbers{F: 1.5, D: 5 * time.Second}},
	} {
		var c numbers
		if _, err := Decode("f.yaml", []byte(tt.yaml), &c); err != nil || c != tt.want {
			t.Errorf("%q: %+v, %v; want %+v", tt.yaml, c, err, tt.want)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{"u: 1.5\n", `f.yaml:1: u: want a whole number, 0 or more, not "1.5"`},
		{"u: 1e3\n", `f.yaml:1: u: want a whole number, 0 or more, not "1e3" (write 1000)`},
		{"u: -1\n", `f.yaml:1: u: want a whole number, 0 or more, not "-1"`},
		{"u: -0.5\n", `f.yaml:1: u: want a whole number, 0 or more, not "-0.5"`},
		{"u: 70000\n", `f.yaml:1: u: want a whole number, 0 or more, not "70000"`},
		{"u8: 2.0\n", `f.yaml:1: u8: want a whole number, 0 or more, not "2.0" (write 2)`},
		{"i8: 2.5\n", `f.yaml:1: i8: want a whole number, not "2.5"`},
		{"i8: 128\n", `f.yaml:1: i8: want a whole number, not "128"`},
		{"i8: .nan\n", `f.yaml:1: i8: want a whole number, not ".nan"`},
	} {
		var c numbers
		_, err := Decode("f.yaml", []byte(tt.yaml), &c)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: %v (%+v)\nwant %s", tt.yaml, err, c, tt.want)
		}
	}
}

func TestDecodeGood(t *testing.T) {
	var c testConfig
	doc, err := Decode("dir/f.yaml", []byte(`
defaults: &d {addr: "10.0.0.1:1", tags: [x]}
name: 12
max_conns: 3
on: true
wait: 1m30s
inner:
  <<: *d
list:
  - *d
  - {addr: b}
labels: {a: b}
`[1:]), &struct {
		Defaults   testInner `yaml:"defaults"`
		testConfig `yaml:",inline"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	_ = c
	if got := doc.Line("list[1].addr"); got != 10 {
		t.Errorf("Line(list[1].addr) = %d, want 10", got)
	}
	if got := doc.Line("inner.nothing"); got != 6 {
		t.Errorf("Line(inner.nothing) = %d, want 6 (the parent's)", got)
	}
	if !filepath.IsAbs(doc.Dir) || doc.Path("a.pem") != filepath.Join(doc.Dir, "a.pem") || doc.Path("/x") != "/x" {
		t.Errorf("Dir %q, Path(a.pem) %q", doc.Dir, doc.Path("a.pem"))
	}
}

func TestDecodeValues(t *testing.T) {
	var c testConfig
	if _, err := Decode("f.yaml", []byte("name: web\nwait: 0s\ninner: {addr: a}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "web" || c.Inner.Addr != "a" || !c.Wait.Given || c.Wait.Line != 2 || c.Wait.Or(time.Hour) != 0 {
		t.Errorf("decoded %+v", c)
	}
	var empty testConfig
	if _, err := Decode("f.yaml", []byte("# nothing\n"), &empty); err != nil || empty.Wait.Given || empty.Wait.Or(time.Hour) != time.Hour {
		t.Errorf("empty file: %v %+v", err, empty)
	}
	if _, err := Decode("f.yaml", []byte("name: [\n"), &empty); err == nil || !strings.HasPrefix(err.Error(), "f.yaml: ") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestDurationFlag(t *testing.T) {
	var d Duration
	if d.String() != "" {
		t.Errorf("zero String %q", d.String())
	}
	if err := d.Set("soon"); err == nil || !strings.Contains(err.Error(), `invalid duration "soon"`) {
		t.Errorf("Set(soon): %v", err)
	}
	if err := d.Set("2s"); err != nil || d.Duration != 2*time.Second || !d.Given || d.String() != "2s" {
		t.Errorf("Set(2s): %v %+v", err, d)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "pw"), "s3cret\r\n")
	writeTestFile(t, filepath.Join(dir, "two"), "s3cret\nnot the secret\n")
	writeTestFile(t, filepath.Join(dir, "bare"), "s3cret")
	writeTestFile(t, filepath.Join(dir, "empty"), "\n")
	doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte("a:\n  password_file: pw\n"), &struct {
		A struct {
			PasswordFile string `yaml:"password_file"`
		} `yaml:"a"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pw", "two", "bare"} {
		if s, err := doc.Secret("a.password_file", name); err != nil || s != "s3cret" {
			t.Errorf("%s: Secret = %q, %v, want the first line", name, s, err)
		}
	}
	writeTestFile(t, filepath.Join(dir, "blank-first"), "\ns3cret\n")
	for _, name := range []string{"empty", "missing", "blank-first"} {
		_, err := doc.Secret("a.password_file", name)
		if err == nil || !strings.Contains(err.Error(), "f.yaml:2: a.password_file: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTLSBlocks(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "c.pem"), "x")
	writeTestFile(t, filepath.Join(dir, "empty.pem"), "")
	var c struct {
		TLS   ServerTLS  `yaml:"tls"`
		ToTLS *ClientTLS `yaml:"to_tls"`
	}
	doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte("tls:\n  cert: c.pem\n  client_ca: empty.pem\nto_tls:\n  cert: c.pem\n  ca: gone.pem\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TLS.Files(doc, "tls")
	for _, w := range []string{"f.yaml:1: tls.key: missing (a certificate without its key)", "f.yaml:3: tls.client_ca: ", "empty file"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("tls: %v lacks %q", err, w)
		}
	}
	_, err = c.ToTLS.Files(doc, "to_tls")
	for _, w := range []string{"f.yaml:4: to_tls.key: missing (a client certificate without its key)", "f.yaml:6: to_tls.ca: open "} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("to_tls: %v lacks %q", err, w)
		}
	}
	good := ServerTLS{Cert: "c.pem", Key: "c.pem"}
	if f, err := good.Files(doc, "tls"); err != nil || f.Cert != filepath.Join(dir, "c.pem") {
		t.Errorf("good block: %+v, %v", f, err)
	}
}

// TestNotRegularFiles: a config, a certificate, a key or a secret that
// names a device or a named pipe gets an error at once (naming the file,
// line and field), where reading it would never end.
func TestNotRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "c.pem"), "x")
	var c struct {
		TLS ServerTLS `yaml:"tls"`
	}
	if _, err := Load(fifo, &c); err == nil || err.Error() != "config: "+fifo+": not a regular file (a named pipe)" {
		t.Errorf("Load(fifo): %v", err)
	}
	doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte("tls:\n  cert: /dev/zero\n  key: fifo\n  password_file: fifo\n"), &struct {
		TLS struct {
			ServerTLS    `yaml:",inline"`
			PasswordFile string `yaml:"password_file"`
		} `yaml:"tls"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	c.TLS = ServerTLS{Cert: "/dev/zero", Key: "fifo"}
	_, err = c.TLS.Files(doc, "tls")
	for _, w := range []string{"f.yaml:2: tls.cert: /dev/zero: not a regular file (a device)", "f.yaml:3: tls.key: " + fifo + ": not a regular file (a named pipe)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("tls: %v lacks %q", err, w)
		}
	}
	_, err = doc.Secret("tls.password_file", "fifo")
	if w := "f.yaml:4: tls.password_file: " + fifo + ": not a regular file (a named pipe)"; err == nil || !strings.Contains(err.Error(), w) {
		t.Errorf("secret: %v lacks %q", err, w)
	}
}

// TestTLSCurves: curves is checked item by item (tlsconf.ParseCurve),
// errors naming the item's line and index, and reaches ServerFiles.
func TestTLSCurves(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "c.pem"), "x")
	for _, tt := range []struct {
		yaml, files string
		want        []string
	}{
		{"curves: [X25519, prime256v1]\n", "X25519,prime256v1", nil},
		{"curves:\n  - X25519\n  - brainpoolP256r1\n", "", []string{`f.yaml:6: tls.curves[1]: unknown key exchange group "brainpoolP256r1" (want one of X25519MLKEM768, `}},
		{"curves: []\n", "", []string{"f.yaml:4: tls.curves: empty list"}},
	} {
		var c struct {
			TLS ServerTLS `yaml:"tls"`
		}
		doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte("tls:\n  cert: c.pem\n  key: c.pem\n"+indent(tt.yaml)), &c)
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.TLS.Files(doc, "tls")
		if tt.want == nil {
			if err != nil || f.Curves != tt.files {
				t.Errorf("%q: Curves %q, %v; want %q", tt.yaml, f.Curves, err, tt.files)
			}
			continue
		}
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v lacks %q", tt.yaml, err, w)
			}
		}
	}
}

func TestRedisBlock(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "pw"), "pw\n")
	for _, tt := range []struct {
		yaml string
		want string // problem; "" for none
		addr string
		db   int
	}{
		{"addr: 127.0.0.1:6379\npassword_file: pw\ndb: 2\n", "", "127.0.0.1:6379", 2},
		{"url: redis://127.0.0.1:6380/3\n", "", "127.0.0.1:6380", 3},
		{"url: redis://127.0.0.1:6380/3?min_idle_conns=4\n", "", "127.0.0.1:6380", 3}, // no connection made in advance
		{"url: redis://127.0.0.1:6380/3\ndb: 0\n", "", "127.0.0.1:6380", 0},
		{"addr: 127.0.0.1\n", "f.yaml:2: redis.addr: \"127.0.0.1\": want HOST:PORT", "", 0},
		{"db: 1\n", "redis.addr: missing", "", 0},
		{"addr: 127.0.0.1:1\nurl: redis://x:1\n", "redis.addr: give url or addr, not both", "", 0},
		{"url: http://x\n", "f.yaml:2: redis.url: ", "", 0},
		{"url: redis://u:S3CRET@127.0.0.1:bad/0\n", "f.yaml:2: redis.url: invalid port \":bad\" after host (want", "", 0}, // the URL's password not quoted
		{"addr: 127.0.0.1:1\npassword_file: nope\n", "f.yaml:3: redis.password_file: open ", "", 0},
		{"addr: 127.0.0.1:1\ndb: -1\n", "f.yaml:3: redis.db: -1: must not be negative", "", 0},
	} {
		var c struct {
			Redis Redis `yaml:"redis"`
		}
		text := "redis:\n" + indent(tt.yaml)
		doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte(text), &c)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := c.Redis.Options(doc, "redis")
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case tt.want == "" && (opts.Addr != tt.addr || opts.DB != tt.db || opts.MinIdleConns != 0):
			t.Errorf("%q: addr %s db %d min_idle_conns %d", tt.yaml, opts.Addr, opts.DB, opts.MinIdleConns)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFlagError(t *testing.T) {
	var d *Doc // the command line
	err := errors.Join(d.Errorf("tls.cert", "missing"), d.Errorf("max_conns", "negative"), errors.New("other"))
	got := FlagError(err, func(f string) string { return strings.NewReplacer(".", "-", "_", "-").Replace(f) }).Error()
	if want := "flag --tls-cert: missing\nflag --max-conns: negative\nother"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if d.Path("a.pem") != "a.pem" || d.Line("x") != 0 || d.Has("x") {
		t.Error("nil Doc")
	}
}

func TestTLSCertsList(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	for _, name := range []string{"a", "b"} {
		cert, key := ca.Issue(t, "127.0.0.1")
		copyTestFile(t, filepath.Join(dir, name+".crt"), cert)
		copyTestFile(t, filepath.Join(dir, name+".key"), key)
	}
	writeTestFile(t, filepath.Join(dir, "junk.pem"), "junk\n")
	for _, tt := range []struct {
		name, yaml string
		want       []string // problems, each "f.yaml:LINE: FIELD: ..."; none for a good block
	}{
		{"good", "certs:\n  - {cert: a.crt, key: a.key}\n  - cert: b.crt\n    key: b.key\n", nil},
		{"key of another cert", "certs:\n  - {cert: a.crt, key: a.key}\n  - cert: b.crt\n    key: a.key\n",
			[]string{"f.yaml:5: tls.certs[1].key: tls key " + filepath.Join(dir, "a.key") + ": tls: private key does not match public key (certificate " + filepath.Join(dir, "b.crt") + ")"}},
		{"cert not PEM", "certs:\n  - {cert: a.crt, key: a.key}\n  - {cert: junk.pem, key: b.key}\n",
			[]string{"f.yaml:4: tls.certs[1].cert: tls cert " + filepath.Join(dir, "junk.pem") + ": no PEM certificate found"}},
		{"missing key", "certs:\n  - {cert: a.crt}\n", []string{"f.yaml:3: tls.certs[0].key: missing (each item of certs needs cert and key)"}},
		{"unreadable", "certs:\n  - {cert: a.crt, key: gone.key}\n", []string{"f.yaml:3: tls.certs[0].key: open " + filepath.Join(dir, "gone.key")}},
		{"with cert", "cert: a.crt\nkey: a.key\ncerts:\n  - {cert: b.crt, key: b.key}\n", []string{"f.yaml:2: tls.cert: give cert and key, or certs, not both"}},
		{"empty", "certs: []\n", []string{"f.yaml:2: tls.certs: empty list"}},
		{"too many", "certs:\n" + strings.Repeat("  - {cert: a.crt, key: a.key}\n", 9), []string{"f.yaml:2: tls.certs: 9 certificates: want at most 8"}},
		{"unknown item key", "certs:\n  - {cert: a.crt, kee: a.key}\n", []string{"f.yaml:3: tls.certs[0].kee: unknown field (want one of: cert, key)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c struct {
				TLS ServerTLS `yaml:"tls"`
			}
			doc, err := Decode(filepath.Join(dir, "f.yaml"), []byte("tls:\n"+indent(tt.yaml)), &c)
			var files tlsconf.ServerFiles
			if err == nil {
				files, err = c.TLS.Files(doc, "tls")
			}
			if tt.want == nil {
				pairs := files.Pairs()
				if err != nil || len(pairs) != 2 || pairs[0].Cert != filepath.Join(dir, "a.crt") || pairs[1].Key != filepath.Join(dir, "b.key") {
					t.Fatalf("Files() = %v, %v", pairs, err)
				}
				if _, err := tlsconf.LoadServer(files); err != nil {
					t.Fatal(err)
				}
				return
			}
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], filepath.Join(dir, w)) {
					t.Errorf("problem %q, want %q", got[i], filepath.Join(dir, w))
				}
			}
		})
	}
	// The one-certificate form and the flags' comparison still work.
	if (ServerTLS{Cert: "a.crt"}) == (ServerTLS{}) {
		t.Error("ServerTLS comparison")
	}
}

func copyTestFile(t *testing.T, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dst, string(b))
}

package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// Every flag of `pipegate forward` has a key in the config file
// (fwdFlagKeys), that key exists, and docs/forward.md's table says so.
func TestForwardFlagsHaveKeys(t *testing.T) {
	var help strings.Builder
	if _, err := fwdParseArgs([]string{"-h"}, &help); err == nil {
		t.Fatal("-h: no error")
	}
	keyOf := map[string]string{}
	for _, fk := range fwdFlagKeys {
		keyOf[fk.flag] = fk.key
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 30 {
		t.Fatalf("found only %d flags in the usage:\n%s", len(flags), help.String())
	}
	docs, err := os.ReadFile("../../docs/forward.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range flags {
		name := m[1]
		if name == "config" {
			continue
		}
		key, ok := keyOf[name]
		if !ok {
			t.Errorf("flag --%s has no config key in fwdFlagKeys", name)
			continue
		}
		if !fwdHasKey(key) {
			t.Errorf("flag --%s: key %s is not in fwdSpec or fwdFile", name, key)
		}
		if row := fmt.Sprintf("| `--%s` | `%s` |", name, key); !strings.Contains(string(docs), row) {
			t.Errorf("docs/forward.md lacks the row %s", row)
		}
	}
	if len(flags)-1 != len(fwdFlagKeys) {
		t.Errorf("%d flags but %d entries in fwdFlagKeys", len(flags)-1, len(fwdFlagKeys))
	}
}

// fwdHasKey reports whether key ("to_tls.ca") is a yaml path of fwdSpec
// (a forward) or of fwdFile (the top level).
func fwdHasKey(key string) bool {
	for _, typ := range []reflect.Type{reflect.TypeFor[fwdSpec](), reflect.TypeFor[fwdFile]()} {
		t := typ
		found := true
		for part := range strings.SplitSeq(key, ".") {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			next := reflect.Type(nil)
			for f := range t.Fields() {
				if strings.Split(f.Tag.Get("yaml"), ",")[0] == part {
					next = f.Type
				}
			}
			if next == nil {
				found = false
				break
			}
			t = next
		}
		if found {
			return true
		}
	}
	return false
}

// The --backoff help says what the code does: a failing upstream is tried
// after the others, never skipped (see forward's pool.candidates).
func TestForwardBackoffHelp(t *testing.T) {
	var help strings.Builder
	fwdParseArgs([]string{"-h"}, &help)
	line := regexp.MustCompile(`(?m)^  -backoff.*\n.*`).FindString(help.String())
	if line == "" {
		t.Fatalf("no -backoff in the usage:\n%s", help.String())
	}
	if strings.Contains(line, "skip") || !strings.Contains(line, "after the others") {
		t.Errorf("--backoff help does not say the upstream is tried last: %q", line)
	}
}

// A bad trusted-proxy entry is named like every other field: file, line of
// the entry, forward, field with its index, and the problem.
func TestForwardConfigBadTrustedProxy(t *testing.T) {
	path := fwdWriteConfig(t, `forwards:
  - name: edge
    listen: 127.0.0.1:0
    to: [127.0.0.1:1]
    accept_proxy: true
    trusted_proxy:
      - 10.0.0.0/8
      - 192.0.2.x
`)
	_, err := fwdLoadFile(path, fwdTLSCache{})
	want := path + `:8: forwards[0].trusted_proxy[1]: "192.0.2.x" is not an IP address or CIDR prefix (unexpected character (at "x"))`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestForwardConfigAllFields(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	ccert, ckey := ca.ClientCertFiles(t, "pg")
	path := fwdWriteConfig(t, fmt.Sprintf(`
metrics_addr: 127.0.0.1:0
log_format: json
log_level: debug
drain_timeout: 7s
forwards:
  - name: all
    listen: 127.0.0.1:0
    to: [127.0.0.1:1, "unix:/run/up.sock"]
    sni:
      - server_name: "*.example"
        to: [127.0.0.1:2]
    balance: roundrobin
    tls:
      cert: %[1]s
      key: %[2]s
      client_ca: %[3]s
    to_tls:
      ca: %[3]s
      server_name: up.example
      cert: %[4]s
      key: %[5]s
    send_proxy: v2
    accept_proxy: true
    trusted_proxy: [10.0.0.0/8, "::1"]
    max_conns: 100
    max_conns_per_ip: 10
    dial_timeout: 1s
    handshake_timeout: 2s
    idle_timeout: 3s
    max_lifetime: 4s
    half_close_linger: 5s
    backoff: 6s
    tcp_keepalive: 8s
    go_accept: true
    tls_on_goroutines: true
`, cert, key, ca.CertFile(t), ccert, ckey))
	l, err := fwdLoadFile(path, fwdTLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	if l.metricsAddr != "127.0.0.1:0" || l.logFormat != "json" || l.logLevel != "debug" || l.drainTimeout != 7*time.Second {
		t.Errorf("globals: %+v", l)
	}
	c := l.forwards[0]
	want := forward.Config{
		Name: "all", Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1", "unix:/run/up.sock"},
		Routes:    []forward.Route{{ServerName: "*.example", Upstreams: []string{"127.0.0.1:2"}}},
		Balance:   forward.RoundRobin,
		SendProxy: "v2", AcceptProxy: true, MaxConns: 100, MaxConnsPerIP: 10,
		DialTimeout: time.Second, HandshakeTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second,
		MaxLifetime: 4 * time.Second, HalfCloseLinger: 5 * time.Second, Backoff: 6 * time.Second,
		TCPKeepAlive: 8 * time.Second, GoAccept: true, TLSOnGoroutines: true,
	}
	if c.TLS == nil || c.UpstreamTLS == nil || c.UpstreamTLS.ServerName != "up.example" || len(c.UpstreamTLS.Certificates) != 1 {
		t.Errorf("TLS settings: %+v / %+v", c.TLS, c.UpstreamTLS)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "::1/128" {
		t.Errorf("trusted proxies: %v", c.TrustedProxies)
	}
	c.TLS, c.UpstreamTLS, c.TrustedProxies = nil, nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config:\n got %+v\nwant %+v", c, want)
	}
}

// The ways back (go_accept, tls_on_goroutines) come from the file, per
// forward or for all, and from the flags; --tls-on-goroutines may be given
// next to --config.
func TestForwardConfigWaysBack(t *testing.T) {
	path := fwdWriteConfig(t, `
tls_on_goroutines: true
forwards:
  - {name: a, listen: 127.0.0.1:0, to: [127.0.0.1:1], go_accept: true}
  - {name: b, listen: 127.0.0.1:0, to: [127.0.0.1:1]}
`)
	l, err := fwdLoadFile(path, fwdTLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := l.forwards[0], l.forwards[1]; !a.GoAccept || b.GoAccept || !a.TLSOnGoroutines || !b.TLSOnGoroutines {
		t.Errorf("from the file: a %v/%v, b %v/%v", a.GoAccept, a.TLSOnGoroutines, b.GoAccept, b.TLSOnGoroutines)
	}
	for _, tc := range []struct {
		args               []string
		goAccept, tlsOnGos bool
	}{
		{[]string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1"}, false, false},
		{[]string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--go-accept", "--tls-on-goroutines"}, true, true},
	} {
		o, err := fwdParseArgs(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		l, err := fwdLoad(o, fwdTLSCache{})
		if err != nil {
			t.Fatal(err)
		}
		if c := l.forwards[0]; c.GoAccept != tc.goAccept || c.TLSOnGoroutines != tc.tlsOnGos {
			t.Errorf("%v: GoAccept %v, TLSOnGoroutines %v", tc.args, c.GoAccept, c.TLSOnGoroutines)
		}
	}
	plain := fwdWriteConfig(t, "forwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n")
	o, err := fwdParseArgs([]string{"--config", plain, "--tls-on-goroutines"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := fwdLoad(o, fwdTLSCache{}); err != nil || !l.forwards[0].TLSOnGoroutines {
		t.Errorf("--tls-on-goroutines next to --config: %v", err)
	}
}

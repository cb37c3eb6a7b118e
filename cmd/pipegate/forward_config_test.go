package main

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"pipegate/forward"
	"pipegate/internal/tlstest"
)

// Every flag of `pipegate forward` has a config file field of the same name.
func TestForwardFlagsHaveFields(t *testing.T) {
	var help strings.Builder
	if _, err := fwdParseArgs([]string{"-h"}, &help); err == nil {
		t.Fatal("-h: no error")
	}
	fields := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[fwdSpec](), reflect.TypeFor[fwdFile]()} {
		for f := range typ.Fields() {
			fields[strings.Split(f.Tag.Get("yaml"), ",")[0]] = true
		}
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 25 {
		t.Fatalf("found only %d flags in the usage:\n%s", len(flags), help.String())
	}
	for _, m := range flags {
		if name := m[1]; name != "config" && !fields[name] {
			t.Errorf("flag --%s has no config field", name)
		}
	}
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
    accept-proxy: true
    trusted-proxy:
      - 10.0.0.0/8
      - 192.0.2.x
`)
	_, err := fwdLoadFile(path, fwdTLSCache{})
	want := path + `:8: forwards[0] (edge): field trusted-proxy[1]: "192.0.2.x" is not an IP address or CIDR prefix (unexpected character (at "x"))`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestForwardConfigAllFields(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	ccert, ckey := ca.ClientCertFiles(t, "pg")
	path := fwdWriteConfig(t, fmt.Sprintf(`
metrics-addr: 127.0.0.1:0
log-format: json
log-level: debug
drain-timeout: 7s
forwards:
  - name: all
    listen: 127.0.0.1:0
    to: [127.0.0.1:1, "unix:/run/up.sock"]
    sni:
      - server-name: "*.example"
        to: [127.0.0.1:2]
    balance: roundrobin
    tls-cert: %[1]s
    tls-key: %[2]s
    client-ca: %[3]s
    to-tls: true
    to-ca: %[3]s
    to-server-name: up.example
    to-cert: %[4]s
    to-key: %[5]s
    send-proxy: v2
    accept-proxy: true
    trusted-proxy: [10.0.0.0/8, "::1"]
    max-conns: 100
    max-conns-per-ip: 10
    dial-timeout: 1s
    handshake-timeout: 2s
    idle-timeout: 3s
    max-lifetime: 4s
    half-close-linger: 5s
    backoff: 6s
    tcp-keepalive: 8s
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
		TCPKeepAlive: 8 * time.Second,
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

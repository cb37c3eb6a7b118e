package forward

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/logconf"
	"github.com/pipegate/pipegate/internal/yamlconf"
)

// configSeeds are good forward files naming the fixture's files
// (configtest.Fixture): the tests' files and docs/forward.md's example.
var configSeeds = []string{
	"forwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n",
	"tls_on_goroutines: true\nforwards:\n  - {name: a, listen: 127.0.0.1:0, to: [127.0.0.1:1], go_accept: true}\n  - {name: b, listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n",
	"drain_timeout: 6s\ndrain_spread: 6s\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n",
	`metrics_addr: 127.0.0.1:0
log_format: json
log_level: debug
drain_timeout: 7s
drain_spread: 2s
forwards:
  - name: all
    listen: 127.0.0.1:0
    to: [127.0.0.1:1, "unix:/run/up.sock"]
    sni:
      - server_name: "*.example"
        to: [127.0.0.1:2]
    balance: roundrobin
    tls:
      cert: server.crt
      key: server.key
      client_ca: ca.crt
      ticket_keys: ticket.keys
      curves: [X25519]
    to_tls:
      ca: ca.crt
      server_name: up.example
      cert: client.crt
      key: client.key
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
`,
	"forwards:\n  - listen: unix:/run/pg.sock\n    to_tls: {}\n    to: [db.internal:5432]\n    tls:\n      certs:\n        - {cert: server.crt, key: server.key}\n        - {cert: client.crt, key: client.key}\n",
}

// configBadSeeds have problems, each at its line.
var configBadSeeds = []string{
	"forwards:\n  - name: edge\n    listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    accept_proxy: true\n    trusted_proxy:\n      - 10.0.0.0/8\n      - 192.0.2.x\n",
	"drain_timeout: 6s\ndrain_spread: 7s\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n",
	"forwards: []\n", "log_level: loud\n",
	"forwards:\n  - {name: a, listen: 127.0.0.1:1, to: [x:1]}\n  - {name: a, listen: 127.0.0.1:1, to: [x:1]}\n",
	"forwards:\n  - listen: 127.0.0.1:1\n    max-conns: 3\n    tls-cert: x\n    to-tls: {}\n    sni: [{server_name: \"a b\", to: []}]\n",
	"forwards:\n  - listen: 127.0.0.1:1\n    to: [h:1]\n    tls: {cert: server.crt, key: client.key}\n    to_tls: {ca: empty, cert: nope}\n",
	"forwards:\n  - {listen: !!int x, to: [h:1]}\n", "forwards:\n  - {listen: 127.0.0.1:0, to: [!!null y]}\n",
	"forwards:\n  - listen: 127.0.0.1:0\n    to: [h:1]\n    tls: !!null {cert: a}\n", "drain_timeout: !!null 5s\nforwards:\n  - {listen: !!null x, max_conns: !!str 3}\n",
	"forwards:\n  - &f {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n  - *f\n  - {<<: *f, name: b}\n",
	"forwards:\n  - listen: 127.0.0.1:0\n    to: [h:1]\n    tls: {cert: /dev/zero, key: /dev/stdin, ticket_keys: /dev/urandom}\n",
}

// configDocSeeds are docs/forward.md's paths as the fixture names them.
var configDocSeeds = strings.NewReplacer(
	"/etc/pipegate/site.crt", "server.crt", "/etc/pipegate/site.key", "server.key",
	"/etc/pipegate/site-rsa.crt", "server.crt", "/etc/pipegate/site-rsa.key", "server.key",
	"/etc/pipegate/site-ecdsa.crt", "client.crt", "/etc/pipegate/site-ecdsa.key", "client.key",
	"/etc/pipegate/ticket.keys", "ticket.keys", "/etc/pipegate/ca.crt", "ca.crt",
	"/etc/pipegate/client.crt", "client.crt", "/etc/pipegate/client.key", "client.key",
)

// FuzzLoadFile: any file gives a config or an error, never a panic nor a
// goroutine; every problem names the file, its line and field
// (configtest.CheckProblems); a config holds at least one forward, each
// valid (Validate) with its TLS when the file asks for it, and a drain
// spread within the drain timeout; loading again, afresh or through the
// reload cache, gives the same config or the same error.
func FuzzLoadFile(f *testing.F) {
	fixture := configtest.Fixture(f)
	configtest.AddSeeds(f, configSeeds, configBadSeeds)
	configtest.AddDocExamples(f, "..", configDocSeeds.Replace)
	f.Fuzz(func(t *testing.T, data []byte) {
		configtest.SkipKernelFile(t, data)
		path := configtest.WriteFile(t, fixture, "forward.yaml", data)
		before := configtest.Goroutines()
		cache := TLSCache{}
		c, err := LoadFile(path, cache)
		again, errAgain := LoadFile(path, TLSCache{})
		reload, errReload := LoadFile(path, cache)
		configtest.CheckNoGoroutine(t, before, "LoadFile")
		configtest.SameErr(t, err, errAgain)
		configtest.SameErr(t, err, errReload)
		if err != nil {
			if c != nil {
				t.Fatalf("both a config and an error: %v", err)
			}
			var lineOf func(string) int
			if doc, err := yamlconf.Decode(path, data, &File{}); err == nil {
				lineOf = doc.Line
			}
			configtest.CheckProblems(t, path, data, err, lineOf)
			return
		}
		var file File
		if _, err := yamlconf.Decode(path, data, &file); err != nil {
			t.Fatalf("LoadFile took a file that yamlconf refuses: %v", err)
		}
		if len(c.Forwards) == 0 || len(c.Forwards) != len(file.Forwards) || c.DrainSpread < 0 || c.DrainSpread > c.DrainTimeout ||
			c.DrainTimeout < 0 || !logconf.ValidFormat(c.LogFormat) || !logconf.ValidLevel(c.LogLevel) {
			t.Fatalf("config %+v", c)
		}
		if _, err := CheckUnique(c.Forwards); err != nil {
			t.Fatalf("forwards not unique: %v", err)
		}
		for i, fc := range c.Forwards {
			if err := fc.Validate(); err != nil {
				t.Fatalf("forwards[%d] does not validate: %v", i, err)
			}
			if (fc.TLS != nil) != (file.Forwards[i].TLS != nil) || (fc.UpstreamTLS != nil) != (file.Forwards[i].ToTLS != nil) {
				t.Fatalf("forwards[%d]: TLS %v, to_tls %v, for %+v", i, fc.TLS != nil, fc.UpstreamTLS != nil, file.Forwards[i])
			}
		}
		if want := sameView(c); !reflect.DeepEqual(sameView(again), want) || !reflect.DeepEqual(sameView(reload), want) {
			t.Fatalf("loaded %+v\nthen %+v\nthen %+v", want, sameView(again), sameView(reload))
		}
	})
}

// TestLoadFileFuzzSeeds: the good seeds load, docs/forward.md's example
// with the fixture's files too, so that the fuzzer starts past every check;
// with a cache and without one (nil, as a program that never reloads
// may pass).
func TestLoadFileFuzzSeeds(t *testing.T) {
	fixture := configtest.Fixture(t)
	seeds := configSeeds
	for _, s := range configtest.DocExamples(t, "..") {
		if bytes.HasPrefix(s, []byte("metrics_addr")) {
			seeds = append(seeds, configDocSeeds.Replace(string(s)))
		}
	}
	if len(seeds) != len(configSeeds)+1 {
		t.Fatalf("docs/forward.md's example not found")
	}
	for _, s := range seeds {
		path := configtest.WriteFile(t, fixture, "forward.yaml", []byte(s))
		for _, cache := range []TLSCache{{}, nil} {
			if _, err := LoadFile(path, cache); err != nil {
				t.Errorf("%q (cache %v): %v", s, cache != nil, err)
			}
		}
	}
}

// sameView is c without its *tls.Config values (their certificate
// pools hold functions), which are summed up instead.
func sameView(c *DaemonConfig) any {
	if c == nil {
		return nil
	}
	cc := *c
	var sums []string
	cc.Forwards = nil
	for _, fc := range c.Forwards {
		sums = append(sums, configtest.TLSSummary(fc.TLS), configtest.TLSSummary(fc.UpstreamTLS))
		fc.TLS, fc.UpstreamTLS = nil, nil
		fc.tlsCommit = nil // set on a reload (LoadFile with the cache)
		fc.tlsServed = nil // a func, set with TLS (summarised above)
		cc.Forwards = append(cc.Forwards, fc)
	}
	return []any{cc, sums}
}

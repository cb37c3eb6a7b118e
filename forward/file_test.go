package forward

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/internal/yamlconf"
)

// writeConfig writes a forward config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A bad trusted-proxy entry is named like every other field: file, line of
// the entry, forward, field with its index, and the problem.
func TestLoadFileBadTrustedProxy(t *testing.T) {
	path := writeConfig(t, `forwards:
  - name: edge
    listen: 127.0.0.1:0
    to: [127.0.0.1:1]
    accept_proxy: true
    trusted_proxy:
      - 10.0.0.0/8
      - 192.0.2.x
`)
	_, err := LoadFile(path, TLSCache{})
	want := path + `:8: forwards[0].trusted_proxy[1]: "192.0.2.x" is not an IP address or CIDR prefix (unexpected character (at "x"))`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestLoadFileAllFields(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	ccert, ckey := ca.ClientCertFiles(t, "pg")
	path := writeConfig(t, fmt.Sprintf(`
metrics_addr: 127.0.0.1:0
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
	l, err := LoadFile(path, TLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	if l.MetricsAddr != "127.0.0.1:0" || l.LogFormat != "json" || l.LogLevel != "debug" || l.DrainTimeout != 7*time.Second || l.DrainSpread != 2*time.Second {
		t.Errorf("globals: %+v", l)
	}
	c := l.Forwards[0]
	want := Config{
		Name: "all", Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1", "unix:/run/up.sock"},
		Routes:    []Route{{ServerName: "*.example", Upstreams: []string{"127.0.0.1:2"}}},
		Balance:   RoundRobin,
		SendProxy: "v2", AcceptProxy: true, MaxConns: 100, MaxConnsPerIP: 10,
		DialTimeout: time.Second, HandshakeTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second,
		MaxLifetime: 4 * time.Second, HalfCloseLinger: 5 * time.Second, Backoff: 6 * time.Second,
		TCPKeepAlive: 8 * time.Second, GoAccept: true, TLSOnGoroutines: true,
	}
	if c.TLS == nil || c.tlsServed == nil || c.UpstreamTLS == nil || c.UpstreamTLS.ServerName != "up.example" || len(c.UpstreamTLS.Certificates) != 1 {
		t.Errorf("TLS settings: %+v / %+v", c.TLS, c.UpstreamTLS)
	}
	c.tlsServed = nil // a func: compared above
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "::1/128" {
		t.Errorf("trusted proxies: %v", c.TrustedProxies)
	}
	c.TLS, c.UpstreamTLS, c.TrustedProxies = nil, nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config:\n got %+v\nwant %+v", c, want)
	}
}

// The ways back (go_accept, tls_on_goroutines) come from the file, per
// forward or for all (cmd/pipegate tests the flags).
func TestLoadFileWaysBack(t *testing.T) {
	path := writeConfig(t, `
tls_on_goroutines: true
forwards:
  - {name: a, listen: 127.0.0.1:0, to: [127.0.0.1:1], go_accept: true}
  - {name: b, listen: 127.0.0.1:0, to: [127.0.0.1:1]}
`)
	l, err := LoadFile(path, TLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := l.Forwards[0], l.Forwards[1]; !a.GoAccept || b.GoAccept || !a.TLSOnGoroutines || !b.TLSOnGoroutines {
		t.Errorf("from the file: a %v/%v, b %v/%v", a.GoAccept, a.TLSOnGoroutines, b.GoAccept, b.TLSOnGoroutines)
	}
}

// drain_spread defaults to min(10s, drain_timeout/2); 0 is allowed; more
// than drain_timeout is an error naming the file, line and key. Flags
// (SetDrain) win over the file, and the default follows their timeout.
func TestLoadFileDrainSpread(t *testing.T) {
	for _, tt := range []struct {
		text string
		want time.Duration
		err  string // after "PATH:"
	}{
		{"", DefaultDrainSpread, ""},
		{"drain_timeout: 6s\n", 3 * time.Second, ""},
		{"drain_timeout: 1m\ndrain_spread: 0s\n", 0, ""},
		{"drain_timeout: 6s\ndrain_spread: 6s\n", 6 * time.Second, ""},
		{"drain_timeout: 6s\ndrain_spread: 7s\n", 0, "2: drain_spread: 7s: want 0 (close at the deadline) up to drain_timeout (6s)"},
	} {
		path := writeConfig(t, tt.text+"forwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n")
		l, err := LoadFile(path, TLSCache{})
		if tt.err != "" {
			if err == nil || err.Error() != path+":"+tt.err {
				t.Errorf("%q: error %v, want %s:%s", tt.text, err, path, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.text, err)
		}
		if l.DrainSpread != tt.want {
			t.Errorf("%q: drain spread %v, want %v", tt.text, l.DrainSpread, tt.want)
		}
	}

	path := writeConfig(t, "drain_timeout: 1m\ndrain_spread: 20s\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n")
	l, err := LoadFile(path, TLSCache{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetDrain(yamlconf.Duration{Duration: 30 * time.Second, Given: true}, yamlconf.Duration{}); err != nil || l.DrainSpread != 20*time.Second {
		t.Errorf("--drain-timeout 30s over drain_spread 20s: %v, %v", l.DrainSpread, err)
	}
	err = l.SetDrain(yamlconf.Duration{Duration: 10 * time.Second, Given: true}, yamlconf.Duration{})
	if want := "flag --drain-spread: 20s: want 0 (close at the deadline) up to drain_timeout (10s)"; yamlconf.FlagError(err, FlagOf) == nil || yamlconf.FlagError(err, FlagOf).Error() != want {
		t.Errorf("--drain-timeout 10s under drain_spread 20s: %v, want %s", err, want)
	}
	l = &DaemonConfig{DrainTimeout: 8 * time.Second} // flags alone
	if err := l.SetDrain(yamlconf.Duration{}, yamlconf.Duration{}); err != nil || l.DrainSpread != 4*time.Second {
		t.Errorf("default for --drain-timeout 8s: %v, %v", l.DrainSpread, err)
	}
}

// Two forwards (or a forward and metrics_addr) that the kernel would not
// let listen at once are refused by LoadFile, however the addresses are
// written, naming the later one's field and the earlier one. Addresses
// apart, and port 0, are no clash.
func TestLoadFileListenClash(t *testing.T) {
	for _, tt := range []struct {
		text string
		err  string // after "PATH:"; "" for none
	}{
		{"forwards:\n  - {listen: \"0.0.0.0:18081\", to: [127.0.0.1:1]}\n  - {listen: \":18081\", to: [127.0.0.1:1]}\n",
			`3: forwards[1].listen: ":18081": forwards[0].listen ("0.0.0.0:18081") listens there too`},
		{"forwards:\n  - {listen: \"127.0.0.1:18081\", to: [127.0.0.1:1]}\n  - {listen: \"[::]:18081\", to: [127.0.0.1:1]}\n",
			`3: forwards[1].listen: "[::]:18081": forwards[0].listen ("127.0.0.1:18081") listens there too`},
		{"forwards:\n  - {name: a, listen: \"127.0.0.1:18081\", to: [127.0.0.1:1]}\n  - {name: b, listen: \"[::ffff:127.0.0.1]:18081\", to: [127.0.0.1:1]}\n",
			`3: forwards[1].listen: "[::ffff:127.0.0.1]:18081": forwards[0].listen ("127.0.0.1:18081") listens there too`},
		{"forwards:\n  - {listen: \"unix:/run/x/a.sock\", to: [127.0.0.1:1]}\n  - {listen: \"unix:/run/x/../x/a.sock\", to: [127.0.0.1:1]}\n",
			`3: forwards[1].listen: "unix:/run/x/../x/a.sock": forwards[0].listen ("unix:/run/x/a.sock") listens there too`},
		{"metrics_addr: \":18081\"\nforwards:\n  - {listen: \"127.0.0.1:18081\", to: [127.0.0.1:1]}\n",
			`1: metrics_addr: ":18081": forwards[0].listen ("127.0.0.1:18081") listens there too`},
		{"forwards:\n  - {listen: \"127.0.0.1:18081\", to: [127.0.0.1:1]}\n  - {listen: \"127.0.0.2:18081\", to: [127.0.0.1:1]}\n  - {listen: \"[::1]:18081\", to: [127.0.0.1:1]}\n", ""},
		{"metrics_addr: 127.0.0.1:0\nforwards:\n  - {listen: \"127.0.0.1:0\", to: [127.0.0.1:1]}\n  - {listen: \":0\", to: [127.0.0.1:1]}\n", ""},
		{"forwards:\n  - {listen: \"unix:/run/x/a.sock\", to: [127.0.0.1:1]}\n  - {listen: \"unix:/run/x/b.sock\", to: [127.0.0.1:1]}\n", ""},
	} {
		path := writeConfig(t, tt.text)
		_, err := LoadFile(path, TLSCache{})
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.text, err)
			}
			continue
		}
		if err == nil || err.Error() != path+":"+tt.err {
			t.Errorf("%s: error\n got %v\nwant %s:%s", tt.text, err, path, tt.err)
		}
	}
}

// metrics_addr is checked as the mail daemons check theirs: HOST:PORT,
// a port from 0 to 65535, an IP address, localhost or no host.
func TestLoadFileMetricsAddr(t *testing.T) {
	for _, tt := range []struct{ addr, err string }{
		{"nonsense", `1: metrics_addr: "nonsense": want HOST:PORT (address nonsense: missing port in address)`},
		{"127.0.0.1:99999", `1: metrics_addr: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{"127.0.0.1:http", `1: metrics_addr: "127.0.0.1:http": port "http" is not a number from 0 to 65535`},
		{"metrics.example:9100", `1: metrics_addr: "metrics.example:9100": host must be an IP address (or empty for all)`},
		{"127.0.0.1:9100", ""},
		{":9100", ""},
		{"localhost:9100", ""},
		{"[::1]:0", ""},
	} {
		path := writeConfig(t, fmt.Sprintf("metrics_addr: %q\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n", tt.addr))
		l, err := LoadFile(path, TLSCache{})
		if tt.err == "" {
			if err != nil || l.MetricsAddr != tt.addr {
				t.Errorf("%q: %v", tt.addr, err)
			}
			continue
		}
		if err == nil || err.Error() != path+":"+tt.err {
			t.Errorf("%q: error\n got %v\nwant %s:%s", tt.addr, err, path, tt.err)
		}
	}
}

package ldap

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/pipegate/pipegate/route"
)

// fuzzDN is the entry the fuzz targets read.
const fuzzDN = "uid=a,dc=a,dc=test"

// fuzzProtocols are the request protocols the fuzz targets ask for.
var fuzzProtocols = []string{"", "imap", "pop3", "sieve", "submission", "gopher"}

// fuzzValues is an attribute's values: none for "", else the lines.
func fuzzValues(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func fuzzEntry(attrs map[string]string) *goldap.Entry {
	m := map[string][]string{}
	for a, v := range attrs {
		if vs := fuzzValues(v); vs != nil {
			m[a] = vs
		}
	}
	return goldap.NewEntry(fuzzDN, m)
}

// FuzzEntryRouteHosts: an entry's host, TLS, port and certificate name
// attributes give one backend per host value, of the request's protocol,
// at that very host (nothing decoded or added), with the entry's or the
// configured port and TLS mode, that written as a URL parses back the
// same; an entry without hosts is route.ErrNotFound; any other refusal
// names the entry and the attribute at fault.
func FuzzEntryRouteHosts(f *testing.F) {
	src, err := New(Config{
		URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: "dc=a,dc=test",
		HostAttr: "mailHost", TLSAttr: "mailTLS", PortAttr: "imapPort", Port: 1143,
		ServerNameAttr: "sslName", LoginAttr: "login",
		HostAttrs: map[string]string{"submission": "submissionHost"},
		PortAttrs: map[string]string{"pop3": "pop3Port"},
		Ports:     map[string]int{"sieve": 14190},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("m1.a.test", "", "", "", "", "", "", uint8(0))
	f.Add("m1.a.test", "smtp1.a.test\nsmtp2.a.test", "", "", "1110", "", "alice", uint8(4))
	f.Add("m2.a.test", "", "tls", "10993", "", "", "", uint8(1))
	f.Add("m2.a.test", "", "TLS", "", "", "", "", uint8(2))
	f.Add(" m3.a.test ", "", "starttls", "", "", "mail.a.test", "", uint8(3))
	f.Add("::1\n127.0.0.1", "", "plain", " 143 ", "0", "", "", uint8(1))
	f.Add("m4", "", "", "", "70000", "", "", uint8(2))
	f.Add("m4", "", "ssl", "", "", "", "", uint8(3))
	f.Add("m5", "", "", "", "", "", "", uint8(5))
	f.Add("a b\nc/d", "", "", "", "", "", "", uint8(0))
	f.Add("h:1", "", "", "", "", "", "", uint8(0))
	f.Add("", "only.submission", "", "", "", "", "", uint8(4))
	f.Add("%C3%A9x", "", "", "", "", "", "", uint8(0))
	f.Add("fe80::1%25eth0", "", "", "", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, hosts, subHosts, tlsv, imapPort, pop3Port, sslName, login string, proto uint8) {
		for _, v := range []string{tlsv, imapPort, pop3Port, sslName, login} {
			if strings.Contains(v, "\n") {
				return // one value each
			}
		}
		if len(hosts+subHosts+tlsv+imapPort+pop3Port+sslName+login) > 256 {
			return // long inputs are slow to minimize
		}
		protocol := fuzzProtocols[int(proto)%len(fuzzProtocols)]
		e := fuzzEntry(map[string]string{"mailHost": hosts, "submissionHost": subHosts, "mailTLS": tlsv,
			"imapPort": imapPort, "pop3Port": pop3Port, "sslName": sslName, "login": login})
		rt, err := src.entryRoute(e, protocol)

		// What the entry says, read independently.
		p := protocol
		if p == "" {
			p = "imap"
		}
		hostAttr, hv := "mailHost", fuzzValues(hosts)
		if p == "submission" && subHosts != "" {
			hostAttr, hv = "submissionHost", fuzzValues(subHosts)
		}
		if len(hv) == 0 {
			if !errors.Is(err, route.ErrNotFound) {
				t.Fatalf("no %s: %+v, %v", hostAttr, rt, err)
			}
			return
		}
		refused := func(attr string) {
			t.Helper()
			if err == nil || !strings.HasPrefix(err.Error(), "route/ldap: "+fuzzDN+": "+attr+": ") || errors.Is(err, route.ErrNotFound) {
				t.Fatalf("%q %q: %+v, %v; want an error naming %s", hosts, subHosts, rt, err, attr)
			}
		}
		mode := route.TLSNone
		switch strings.ToLower(strings.TrimSpace(tlsv)) {
		case "", "none", "plain":
		case "starttls":
			mode = route.TLSStartTLS
		case "tls", "ssl", "implicit":
			mode = route.TLSImplicit
		default:
			refused("mailTLS")
			return
		}
		port := map[string]int{"imap": 1143, "sieve": 14190}[p]
		if portAttr := map[string]string{"imap": "imapPort", "pop3": "pop3Port"}[p]; portAttr != "" {
			if v := map[string]string{"imap": imapPort, "pop3": pop3Port}[p]; v != "" {
				n, perr := strconv.Atoi(strings.TrimSpace(v))
				if perr != nil || n < 1 || n > 65535 {
					refused(portAttr)
					return
				}
				port = n
			}
		}
		if err != nil {
			refused(hostAttr) // a bad host, or no scheme for the protocol and mode
			return
		}
		if len(rt.Backends) != len(hv) || rt.Login != login {
			t.Fatalf("%q: %+v from %d hosts", hosts, rt, len(hv))
		}
		name, sc, ok := route.DefaultSchemes.SchemeFor(p, mode)
		if !ok {
			t.Fatalf("%s with TLS %s: no scheme, yet %+v", p, mode, rt)
		}
		if port == 0 {
			port, _ = strconv.Atoi(sc.Port)
		}
		for i, b := range rt.Backends {
			h, ps, _ := net.SplitHostPort(b.Addr)
			wantName := sslName
			if wantName == "" {
				wantName = h
			}
			if b.Protocol != p || b.TLS != mode || h != strings.TrimSpace(hv[i]) || ps != strconv.Itoa(port) || b.ServerName != wantName || b.Pool != "" {
				t.Fatalf("%s %q (scheme %s, port %d, TLS %s): %+v", hostAttr, hv[i], name, port, mode, b)
			}
			again, err := route.ParseBackend(b.String())
			if err != nil || again != b {
				t.Fatalf("%q: %+v written as %q read back as %+v, %v", hv[i], b, b.String(), again, err)
			}
		}
	})
}

// FuzzEntryRouteURLs: an entry's backend URL values give the backends of
// their words, in order, each what route.ParseBackend gives for it
// (FuzzParseBackend fuzzes that); an entry without a URL is
// route.ErrNotFound; a bad URL is refused naming the entry, the
// attribute and the URL.
func FuzzEntryRouteURLs(f *testing.F) {
	src, err := New(Config{URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: "dc=a,dc=test",
		BackendAttr: "pipegateBackend", LoginAttr: "pipegateLogin"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("imap://127.0.0.1:14301\nimaps://m.a.test", "alice")
	f.Add("imaps://h1 pop3s://h1\nsieve+starttls://h1 submission+starttls://h2:1587", "")
	f.Add("imap://h:1?proxy=v2\npool:shared", "")
	f.Add("imap://h:1 gopher://x", "")
	f.Add("  ", "")
	f.Add("\n", "")
	f.Add("", "bob")
	f.Fuzz(func(t *testing.T, urls, login string) {
		if strings.Contains(login, "\n") || len(urls) > 512 {
			return // one login; long inputs are slow to minimize
		}
		rt, err := src.entryRoute(fuzzEntry(map[string]string{"pipegateBackend": urls, "pipegateLogin": login}), "imap")
		var want []route.Backend
		for _, v := range fuzzValues(urls) {
			for _, w := range strings.Fields(v) {
				b, perr := route.ParseBackend(w)
				if perr != nil {
					if err == nil || !strings.HasPrefix(err.Error(), "route/ldap: "+fuzzDN+": pipegateBackend: backend "+strconv.Quote(w)+": ") {
						t.Fatalf("%q: %+v, %v; want the error of %q", urls, rt, err, w)
					}
					return
				}
				want = append(want, b)
			}
		}
		if len(want) == 0 {
			if !errors.Is(err, route.ErrNotFound) {
				t.Fatalf("%q: %+v, %v; want route.ErrNotFound", urls, rt, err)
			}
			return
		}
		if err != nil || rt.Login != login || len(rt.Backends) != len(want) {
			t.Fatalf("%q: %+v, %v; want %v", urls, rt, err, want)
		}
		for i := range want {
			if rt.Backends[i] != want[i] {
				t.Fatalf("%q: backend %d is %+v, want %+v", urls, i, rt.Backends[i], want[i])
			}
		}
	})
}

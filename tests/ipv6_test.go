package tests

import (
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/freeport"
	"github.com/pipegate/pipegate/internal/testenv"
)

func v6Addr(t *testing.T) string {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("::1", strconv.Itoa(p))
}

// onV6 is a Dovecot address (127.0.0.1:port) as [::1]:port.
func onV6(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("::1", port)
}

// TestV6MailEveryProtocol: pipegate mail listening on [::1] for
// every protocol, backends on [::1] (Dovecot listening on ::1 too), and a
// trusted load balancer's PROXY header naming an IPv6 client (and an
// IPv4-mapped one): Dovecot must log the client's address as rip= for
// IMAP (ID x-originating-ip), POP3, ManageSieve and submission (XCLIENT
// ADDR), the mapped one as IPv4.
func TestV6MailEveryProtocol(t *testing.T) {
	users := map[string]string{"alice@a.test": "alice-secret"}
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: users, TrustedNetworks: []string{"127.0.0.1/32", "::1/128"},
		Protocols: []string{testenv.IMAP, testenv.POP3, testenv.Sieve, testenv.Submission},
		Extra:     "listen = 127.0.0.1, ::1\n",
	})
	addrs := map[string]string{}
	listeners := ""
	for _, p := range []string{"imap", "pop3", "sieve", "submission"} {
		addrs[p] = v6Addr(t)
		listeners += fmt.Sprintf("  - addr: \"%s\"\n    protocol: %s\n    accept_proxy: true\n    trusted_proxies: [\"::1/128\"]\n", addrs[p], p)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/routes.yaml", fmt.Sprintf("default: [\"imap://%s\", \"pop3://%s\", \"sieve://%s\", \"submission://%s\"]\n",
		onV6(d.Addr), onV6(d.POP3Addr), onV6(d.SieveAddr), onV6(d.SubmissionAddr)))
	proc := startMail(t, dir, "listen:\n"+listeners+`routes_file: routes.yaml
allow_plaintext_auth: true
hostname: gw.test
drain_timeout: 5s
`, nil, addrs["imap"], addrs["pop3"], addrs["sieve"], addrs["submission"])
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pipegate log:\n%s\ndovecot log:\n%s", proc.log(), d.Log())
		}
	})
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00alice-secret"))
	login := map[string]func(rc *rawClient){
		"imap": func(rc *rawClient) {
			rc.expect("* OK")
			rc.send("a LOGIN alice@a.test alice-secret\r\n")
			if l := rc.expect("a "); !strings.HasPrefix(l, "a OK") {
				t.Errorf("imap: %s", l)
			}
			rc.send("b LOGOUT\r\n")
		},
		"pop3": func(rc *rawClient) {
			rc.expect("+OK")
			rc.send("USER alice@a.test\r\n")
			rc.expect("+OK")
			rc.send("PASS alice-secret\r\n")
			if l := rc.expect(""); !strings.HasPrefix(l, "+OK") {
				t.Errorf("pop3: %s", l)
			}
			rc.send("QUIT\r\n")
		},
		"sieve": func(rc *rawClient) {
			rc.expect("OK")
			rc.send("AUTHENTICATE \"PLAIN\" \"%s\"\r\n", plain)
			if l := rc.expect(""); !strings.HasPrefix(l, "OK") {
				t.Errorf("sieve: %s", l)
			}
			rc.send("LOGOUT\r\n")
		},
		"submission": func(rc *rawClient) {
			rc.expect("220 ")
			rc.send("EHLO client.test\r\n")
			rc.expect("250 ")
			rc.send("AUTH PLAIN %s\r\n", plain)
			if l := rc.expect(""); !strings.HasPrefix(l, "235") {
				t.Errorf("submission: %s", l)
			}
			rc.send("QUIT\r\n")
		},
	}
	service := map[string]string{"imap": "imap-login", "pop3": "pop3-login", "sieve": "managesieve-login", "submission": "submission-login"}
	for i, tc := range []struct{ hdrClient, want string }{
		{"2001:db8:5::7", "2001:db8:5::7"},
		{"::ffff:192.0.2.9", "192.0.2.9"},
	} {
		for _, p := range []string{"imap", "pop3", "sieve", "submission"} {
			t.Run(p+"/"+tc.hdrClient, func(t *testing.T) {
				c := dialFrom(t, "::1", addrs[p])
				rc := newRaw(t, c)
				_, port, _ := net.SplitHostPort(addrs[p])
				rc.send("PROXY TCP6 %s ::1 %d %s\r\n", tc.hdrClient, 40000+i, port)
				login[p](rc)
				if _, err := d.FindLog(fmt.Sprintf(`%s: Info: Login: user=<alice@a\.test>, .*rip=%s,`, service[p], regexp.QuoteMeta(tc.want)), ioTimeout); err != nil {
					got, _ := d.FindLog(fmt.Sprintf(`%s: Info: Login: user=<alice@a\.test>.*`, service[p]), 0)
					t.Errorf("%s: Dovecot did not log rip=%s: %v; last: %s", p, tc.want, err, got)
				}
			})
		}
	}
}

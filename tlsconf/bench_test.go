package tlsconf

import (
	"crypto/tls"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// BenchmarkHandshake compares full and resumed handshakes (TCP connect
// included) against a Server with a ticket key file, the case of a client
// reconnecting to another instance.
func BenchmarkHandshake(b *testing.B) {
	ca := tlstest.NewCA(b)
	cert, key := ca.Issue(b, "127.0.0.1")
	keys := writeTicketKeys(b)
	for _, bc := range []struct {
		name    string
		version uint16
		resume  bool
	}{
		{"TLS13/full", tls.VersionTLS13, false},
		{"TLS13/resumed", tls.VersionTLS13, true},
		{"TLS12/full", tls.VersionTLS12, false},
		{"TLS12/resumed", tls.VersionTLS12, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := LoadServer(ServerFiles{Cert: cert, Key: key, TicketKeys: keys})
			if err != nil {
				b.Fatal(err)
			}
			addr := startTLS(b, s.Config())
			cli := &tls.Config{RootCAs: ca.Pool(), MaxVersion: bc.version}
			if bc.resume {
				cli.ClientSessionCache = tls.NewLRUClientSessionCache(1)
				if _, err := dial(addr, cli); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				st, err := dial(addr, cli)
				if err != nil {
					b.Fatal(err)
				}
				if st.DidResume != bc.resume {
					b.Fatalf("DidResume = %v", st.DidResume)
				}
			}
		})
	}
}

func writeTicketKeys(b *testing.B) string {
	b.Helper()
	return writeFile(b, "ticket.keys", []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"))
}

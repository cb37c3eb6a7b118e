package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"

	"github.com/pipegate/pipegate/tlsconf"
)

// A daemon serves TLS with a Server's Config and calls Reload on SIGHUP;
// here with a self-signed certificate as `pipegate demo` does.
func ExampleStaticServer() {
	cert, err := tlsconf.SelfSigned("127.0.0.1")
	if err != nil {
		panic(err)
	}
	srv := tlsconf.StaticServer(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.Config())
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go serveHello(ln, done)

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots})
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	<-done
	fmt.Printf("%s over TLS 1.3: %v\n", msg, c.ConnectionState().Version == tls.VersionTLS13)
	// Output: hello over TLS 1.3: true
}

func serveHello(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello"))
}

// LoadServer names the file at fault.
func ExampleLoadServer() {
	_, err := tlsconf.LoadServer(tlsconf.ServerFiles{Cert: "/nonexistent/server.crt", Key: "/nonexistent/server.key"})
	fmt.Println(err)
	// Output: tls cert: open /nonexistent/server.crt: no such file or directory
}

// Verification is on by default: against the system roots, or a CA file.
func ExampleLoadClient() {
	cfg, err := tlsconf.LoadClient(tlsconf.ClientFiles{ServerName: "imap.example.org"})
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.ServerName, cfg.InsecureSkipVerify, cfg.RootCAs == nil)
	// Output: imap.example.org false true
}

// Ticket key files hold one 32-byte key per line in hex; the first encrypts.
func ExampleParseTicketKeys() {
	keys, err := tlsconf.ParseTicketKeys([]byte(`# rotate: new key first
000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
`))
	fmt.Println(len(keys), keys[0][31], err)
	// Output: 2 31 <nil>
}

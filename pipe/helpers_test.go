package pipe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/procfs"
	"github.com/pipegate/pipegate/pipe/internal/sock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// kind names how one side of a test pipe is made: what the pipe is given.
type kind string

const (
	kTCP       kind = "tcp"
	kUnix      kind = "unix"
	kTLS       kind = "tls"        // *tls.Conn (server) over TCP, handshake done
	kTLSLazy   kind = "tls-lazy"   // *tls.Conn whose handshake the pipe drives
	kPrefix    kind = "prefix"     // *PrefixConn over TCP carrying the peer's first bytes
	kPrefixTLS kind = "prefix-tls" // *PrefixConn over *tls.Conn
	kNetPipe   kind = "netpipe"    // net.Pipe: no socket, no CloseWrite
	kTLSPipe   kind = "tls-netpipe"
	kTLSNoDL   kind = "tls-nodeadline" // *tls.Conn over a conn without deadlines
)

// noDeadlineConn is a transport that does not support deadlines.
type noDeadlineConn struct{ net.Conn }

var errNoDeadlines = errors.New("deadlines not supported")

func (noDeadlineConn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

// prefixGreeting is what a peer of a prefix kind sends first; the helper
// reads it, so the pipe gets it back as the PrefixConn's Prefix.
const prefixGreeting = "HELLO-PREFIX "

var (
	certOnce sync.Once
	certVal  tls.Certificate
	certPool *x509.CertPool
)

func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "pipe test"},
			DNSNames:     []string{"pipe.test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		certVal = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	return certVal, certPool
}

func serverTLS(t testing.TB) *tls.Config {
	c, _ := testCert(t)
	return &tls.Config{Certificates: []tls.Certificate{c}}
}

func clientTLS(t testing.TB) *tls.Config {
	_, p := testCert(t)
	return &tls.Config{RootCAs: p, ServerName: "pipe.test"}
}

// socketPair returns two connected stream sockets of the network.
func socketPair(t testing.TB, network string) (inner, peer net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s: %v", network, err)
	}
	defer ln.Close()
	ch := make(chan accepted, 1)
	go acceptOne(ln, ch)
	peer, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s: %v", network, err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("accept %s: %v", network, r.err)
	}
	return r.c, peer
}

type accepted struct {
	c   net.Conn
	err error
}

func acceptOne(ln net.Listener, ch chan<- accepted) {
	c, err := ln.Accept()
	ch <- accepted{c, err}
}

// side builds one side of a test pipe: inner goes to the pipe, peer is
// driven by the test. Both are closed at cleanup (the pipe closes inner too).
func side(t testing.TB, k kind) (inner, peer net.Conn) {
	t.Helper()
	switch k {
	case kTCP:
		inner, peer = socketPair(t, "tcp")
	case kUnix:
		inner, peer = socketPair(t, "unix")
	case kNetPipe:
		inner, peer = net.Pipe()
	case kTLS, kTLSLazy, kPrefixTLS, kTLSPipe, kTLSNoDL:
		var raw net.Conn
		switch k {
		case kTLSPipe:
			raw, peer = net.Pipe()
		case kTLSNoDL:
			raw, peer = socketPair(t, "tcp")
			raw = noDeadlineConn{raw}
		default:
			raw, peer = socketPair(t, "tcp")
		}
		srv := tls.Server(raw, serverTLS(t))
		cli := tls.Client(peer, clientTLS(t))
		inner, peer = srv, cli
		if k != kTLSLazy {
			errc := make(chan error, 1)
			go handshake(srv, errc)
			if err := cli.Handshake(); err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
		}
	case kPrefix:
		inner, peer = socketPair(t, "tcp")
	default:
		t.Fatalf("unknown kind %q", k)
	}
	if k == kPrefix || k == kPrefixTLS {
		if _, err := peer.Write([]byte(prefixGreeting)); err != nil {
			t.Fatalf("write greeting: %v", err)
		}
		buf := make([]byte, len(prefixGreeting))
		if _, err := io.ReadFull(inner, buf); err != nil {
			t.Fatalf("read greeting: %v", err)
		}
		inner = WithPrefix(inner, buf)
	}
	t.Cleanup(func() { inner.Close(); peer.Close() })
	return inner, peer
}

func handshake(c *tls.Conn, errc chan<- error) { errc <- c.Handshake() }

// hasPrefix reports whether the kind replays prefixGreeting to the other side.
func (k kind) hasPrefix() bool { return k == kPrefix || k == kPrefixTLS }

// canCloseWrite reports whether the peer of this kind can half-close.
func (k kind) canCloseWrite() bool { return k != kNetPipe && k != kTLSPipe && k != kTLSNoDL }

// isSocket reports whether the kind is a TCP socket (resettable).
func (k kind) isTCP() bool {
	return k == kTCP || k == kTLS || k == kTLSLazy || k == kPrefix || k == kPrefixTLS
}

// closeWrite half-closes a peer.
func closeWrite(t testing.TB, c net.Conn) {
	t.Helper()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T cannot CloseWrite", c)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
}

// reset closes a TCP (or TLS over TCP) peer with RST.
func reset(t testing.TB, c net.Conn) {
	t.Helper()
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("reset: %T is not TCP", c)
	}
	if err := tcp.SetLinger(0); err != nil {
		t.Fatalf("SetLinger: %v", err)
	}
	tcp.Close()
}

// openFDs counts this process's open files, and how many are pipes.
func openFDs(t testing.TB) (all, pipes int) {
	t.Helper()
	sock.DrainPipes()
	fds, err := procfs.FDTargets(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, l := range fds {
		if strings.HasPrefix(l, "pipe:") {
			pipes++
		}
	}
	return len(fds), pipes
}

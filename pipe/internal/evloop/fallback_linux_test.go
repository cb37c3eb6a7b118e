package evloop

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// TestTakeConnsFallbacks: TakeConns refuses what the loops cannot carry,
// leaves the conns working, and FallbackOf names the reason.
func TestTakeConnsFallbacks(t *testing.T) {
	t.Run("net.Pipe", func(t *testing.T) {
		a, pa := net.Pipe()
		defer a.Close()
		defer pa.Close()
		b, pb := socketPair(t, "tcp")
		defer b.Close()
		defer pb.Close()
		_, _, err := TakeConns(Conn{Sock: a}, Conn{Sock: b})
		if !errors.Is(err, ErrUnsupported) || FallbackOf(err) != core.FallbackConnType {
			t.Fatalf("TakeConns: %v (fallback %s), want conn-type", err, FallbackOf(err))
		}
	})
	t.Run("seqpacket", func(t *testing.T) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cs [2]net.Conn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "seqpacket")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cs[i] = c
		}
		_, _, err = TakeConns(Conn{Sock: cs[0]}, Conn{Sock: cs[1]})
		if FallbackOf(err) != core.FallbackConnType {
			t.Fatalf("TakeConns: %v (fallback %s), want conn-type", err, FallbackOf(err))
		}
	})
	t.Run("TLS 1.2", func(t *testing.T) {
		ca := tlstest.NewCA(t)
		raw, a := socketPair(t, "tcp")
		defer raw.Close()
		defer a.Close()
		b, pb := socketPair(t, "tcp")
		defer b.Close()
		defer pb.Close()
		srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}, MaxVersion: tls.VersionTLS12})
		cli := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		_, _, err := TakeConns(Conn{Sock: a, TLS: srv}, Conn{Sock: b})
		if FallbackOf(err) != core.FallbackTLSVersion {
			t.Fatalf("TakeConns: %v (fallback %s), want tls-version", err, FallbackOf(err))
		}
		if _, err := cli.Write([]byte("x")); err != nil { // untouched: still works
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := srv.Read(buf); err != nil || buf[0] != 'x' {
			t.Fatalf("read after refusal: %q, %v", buf, err)
		}
	})
	t.Run("classes", func(t *testing.T) {
		for _, c := range []struct {
			err  error
			want core.Fallback
		}{
			{tlsrec.ErrGoRelease, core.FallbackTLSGoRelease},
			{tlsrec.ErrSuite, core.FallbackTLSSuite},
			{tlsrec.ErrBuffered, core.FallbackTLSBuffered},
			{tlsrec.ErrState, core.FallbackTLSState},
			{syscall.EMFILE, core.FallbackLoopError},
		} {
			if got := FallbackOf(errorsJoinUnsupported(c.err)); got != c.want {
				t.Errorf("FallbackOf(%v) = %s, want %s", c.err, got, c.want)
			}
		}
	})
}

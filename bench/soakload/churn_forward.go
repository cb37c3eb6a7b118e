package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"
)

// forwardScenarios are what a forward worker picks from.
var forwardScenarios = []weighted{
	{50, (*soak).fwdShort},
	{4, (*soak).fwdLong},
	{20, (*soak).fwdHalfClose},
	{12, (*soak).fwdConnectClose},
	{10, (*soak).fwdVanishTLS},
	{3, (*soak).fwdIdle},
}

// forwardWorker runs forward scenarios until ctx ends.
func (s *soak) forwardWorker(ctx context.Context, seed uint64) {
	s.worker(ctx, seed, forwardScenarios)
}

// dialForward connects from src to forward name, counts the connection
// and, on the TLS-terminating forward, runs the handshake unless raw.
func (s *soak) dialForward(name string, src net.IP, raw bool) (net.Conn, *net.TCPConn, error) {
	addr := s.env.fwdAddrs[name]
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s.tally.inc(s.tally.fwdDials, name)
	s.tally.inc(s.tally.fwdClients, c.LocalAddr().String())
	tcp := c.(*net.TCPConn)
	c.SetDeadline(time.Now().Add(opTimeout + time.Minute)) // a long connection lasts up to 30 s
	if name != fwdTLS || raw {
		return c, tcp, nil
	}
	tc := tls.Client(c, s.env.pickTLS())
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, tcp, nil
}

// echo writes p and reads it back.
func echo(c net.Conn, p []byte) error {
	if _, err := c.Write(p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if !bytes.Equal(got, p) {
		return errors.New("echo differs")
	}
	return nil
}

func randBytes(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// fwdShort: one exchange of 1-4 KiB, then close.
func (s *soak) fwdShort(rng *rand.Rand) (string, error) {
	name := pick(rng, forwardNames)
	c, _, err := s.dialForward(name, randSrc(rng, srcFwd), false)
	if err != nil {
		return "fwd short " + name, err
	}
	defer c.Close()
	p := randBytes(rng, 1024+rng.IntN(3072))
	if err := echo(c, p); err != nil {
		return "fwd short " + name, err
	}
	s.tally.add(s.tally.fwdBytes, name, len(p))
	return "fwd short " + name, nil
}

// fwdLong: an exchange every 300 ms for 3 to 15 s (or until the churn
// ends), then close.
func (s *soak) fwdLong(rng *rand.Rand) (string, error) {
	name := pick(rng, forwardNames)
	c, _, err := s.dialForward(name, randSrc(rng, srcFwd), false)
	if err != nil {
		return "fwd long " + name, err
	}
	defer c.Close()
	end := time.Now().Add(3*time.Second + time.Duration(rng.Int64N(int64(12*time.Second))))
	p := randBytes(rng, 512)
	for time.Now().Before(end) && s.churnCtx.Err() == nil {
		if err := echo(c, p); err != nil {
			return "fwd long " + name, err
		}
		s.tally.add(s.tally.fwdBytes, name, len(p))
		select {
		case <-s.churnCtx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	return "fwd long " + name, nil
}

// fwdHalfClose: send up to 64 KiB, end the write side, read everything
// back and then EOF.
func (s *soak) fwdHalfClose(rng *rand.Rand) (string, error) {
	name := pick(rng, forwardNames)
	label := "fwd halfclose " + name
	c, _, err := s.dialForward(name, randSrc(rng, srcFwd), false)
	if err != nil {
		return label, err
	}
	defer c.Close()
	p := randBytes(rng, 1+rng.IntN(64*1024))
	got := make(chan []byte, 1)
	rerr := make(chan error, 1)
	go readAll(c, got, rerr)
	if _, err := c.Write(p); err != nil {
		c.Close()
		<-rerr
		return label, fmt.Errorf("write: %w", err)
	}
	if err := c.(halfCloser).CloseWrite(); err != nil {
		c.Close()
		<-rerr
		return label, fmt.Errorf("close write: %w", err)
	}
	if err := <-rerr; err != nil {
		return label, fmt.Errorf("read to EOF: %w", err)
	}
	if b := <-got; !bytes.Equal(b, p) {
		return label, fmt.Errorf("read back %d bytes of %d", len(b), len(p))
	}
	s.tally.add(s.tally.fwdBytes, name, len(p))
	return label, nil
}

// readAll reads c to EOF.
func readAll(c net.Conn, got chan<- []byte, rerr chan<- error) {
	b, err := io.ReadAll(c)
	got <- b
	rerr <- err
}

// fwdConnectClose: connect and close at once, half with a reset.
func (s *soak) fwdConnectClose(rng *rand.Rand) (string, error) {
	name := pick(rng, forwardNames)
	c, tcp, err := s.dialForward(name, randSrc(rng, srcFwd), true)
	if err != nil {
		return "fwd connect-close", err
	}
	if rng.IntN(2) == 0 {
		tcp.SetLinger(0)
	}
	c.Close()
	return "fwd connect-close", nil
}

// fwdVanishTLS: part of a ClientHello to the TLS-terminating forward,
// then gone.
func (s *soak) fwdVanishTLS(rng *rand.Rand) (string, error) {
	c, tcp, err := s.dialForward(fwdTLS, randSrc(rng, srcFwd), true)
	if err != nil {
		return "fwd vanish-tls", err
	}
	c.Write(s.hello[:1+rng.IntN(len(s.hello))]) // the server may have closed: nothing to check
	if rng.IntN(2) == 0 {
		tcp.SetLinger(0)
	}
	c.Close()
	return "fwd vanish-tls", nil
}

// clientHello returns the first flight of a TLS client: a whole
// ClientHello record, cut short by the vanishing clients.
func clientHello(cfg *tls.Config) ([]byte, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go handshakeInto(tls.Client(a, cfg.Clone()))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		return nil, fmt.Errorf("ClientHello: %w", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		return nil, fmt.Errorf("ClientHello: %w", err)
	}
	return append(hdr, body...), nil
}

// handshakeInto runs a handshake that fails once the pipe closes.
func handshakeInto(c *tls.Conn) { c.Handshake() }

// fwdIdleWait is how long an idle forward client waits for the
// forward's idle timeout to close it: well past fwdIdleTimeout.
const fwdIdleWait = 25 * time.Second

// fwdIdle: one exchange, then silence. A forward with an idle timeout
// must close the connection (EOF) within fwdIdleWait; on the others the
// client closes after 3 to 8 s.
func (s *soak) fwdIdle(rng *rand.Rand) (string, error) {
	name := pick(rng, forwardNames)
	label := "fwd idle " + name
	c, _, err := s.dialForward(name, randSrc(rng, srcFwd), false)
	if err != nil {
		return label, err
	}
	defer c.Close()
	if err := echo(c, randBytes(rng, 64)); err != nil {
		return label, err
	}
	s.tally.add(s.tally.fwdBytes, name, 64)
	if !fwdIdle[name] {
		select {
		case <-s.churnCtx.Done():
		case <-time.After(3*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))):
		}
		return label, nil
	}
	c.SetReadDeadline(time.Now().Add(fwdIdleWait))
	n, err := c.Read(make([]byte, 1))
	switch {
	case n > 0:
		return label, errors.New("a byte from an idle connection")
	case err == nil || errors.Is(err, io.EOF) || isClosed(err):
		return label, nil
	}
	return label, fmt.Errorf("not closed by idle_timeout within %v: %w", fwdIdleWait, err)
}

package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/internal/procfs"
)

type client struct {
	addr string
	tls  *tls.Config // nil: plain
}

func (cl *client) dial() (net.Conn, error) {
	c, err := net.DialTimeout("tcp", cl.addr, 5*time.Second)
	if err != nil || cl.tls == nil {
		return c, err
	}
	tc := tls.Client(c, cl.tls)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// measure runs one client measurement and prints its figure.
func measure(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	addr := fs.String("addr", "", "address to connect to")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	ca := fs.String("ca", "", "CA (or self-signed certificate) to verify the server")
	duration := fs.Duration("duration", 2*time.Second, "bulk, connrate: how long")
	n := fs.Int("n", 5000, "pingpong: round trips; idle: connections")
	workers := fs.Int("workers", 4, "connrate: concurrent clients")
	pid := fs.Int("pid", 0, "idle: process whose RSS to measure; connrate, bulk, bulkdown: process whose CPU time (per connection, per GB) to print too")
	fs.Parse(args)
	cl := &client{addr: *addr}
	if *useTLS {
		cl.tls = &tls.Config{ServerName: "127.0.0.1", ClientSessionCache: nil}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				return err
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cl.tls.RootCAs = pool
		}
	}
	var v float64
	var err error
	if cmd == "connrate" && *pid != 0 {
		return connrateCPU(cl, *duration, *workers, *pid)
	}
	if (cmd == "bulk" || cmd == "bulkdown") && *pid != 0 {
		return bulkCPU(cl, cmd, *duration, *pid)
	}
	switch cmd {
	case "bulk":
		v, _, err = bulk(cl, *duration)
	case "bulkdown":
		v, _, err = bulkDown(cl, *duration)
	case "pingpong":
		v, err = pingpong(cl, *n)
	case "connrate":
		v, _, err = connrate(cl, *duration, *workers)
	case "idle":
		v, err = idle(cl, *n, *pid)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%.1f\n", v)
	return nil
}

// bulk writes for d and returns MB/s and the bytes, as counted by the
// server.
func bulk(cl *client, d time.Duration) (float64, int64, error) {
	c, err := cl.dial()
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	buf[0] = 'B'
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return 0, 0, err
		}
		buf[0] = 0
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	var out [8]byte
	if _, err := io.ReadFull(c, out[:]); err != nil {
		return 0, 0, fmt.Errorf("read count: %w", err)
	}
	elapsed := time.Since(start)
	n := int64(binary.BigEndian.Uint64(out[:]))
	return float64(n) / elapsed.Seconds() / 1e6, n, nil
}

// bulkDown asks the server to write ('D'), reads for d and returns MB/s
// and the bytes, as counted by this client.
func bulkDown(cl *client, d time.Duration) (float64, int64, error) {
	c, err := cl.dial()
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'D'}); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 256<<10)
	var n int64
	start := time.Now()
	for time.Since(start) < d {
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			return 0, 0, fmt.Errorf("read after %d bytes: %w", n, err)
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6, n, nil
}

// bulkCPU prints the throughput of bulk (cmd "bulk", client to server) or
// bulkDown (cmd "bulkdown", server to client) and the CPU time (user plus
// system, all threads) that process pid spent per GB moved meanwhile, in
// seconds.
func bulkCPU(cl *client, cmd string, d time.Duration, pid int) error {
	before, err := procfs.ReadStat(pid)
	if err != nil {
		return err
	}
	run := bulk
	if cmd == "bulkdown" {
		run = bulkDown
	}
	rate, n, err := run(cl, d)
	if err != nil {
		return err
	}
	after, err := procfs.ReadStat(pid)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: no bytes moved", cmd)
	}
	ticks := after.CPUTicks() - before.CPUTicks()
	fmt.Printf("%.1f %.3f\n", rate, float64(ticks)/procfs.TicksPerSecond/(float64(n)/1e9))
	return nil
}

// pingpong sends n 64-byte messages one at a time and returns the median
// round trip in microseconds.
func pingpong(cl *client, n int) (float64, error) {
	c, err := cl.dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'E'}); err != nil {
		return 0, err
	}
	msg := make([]byte, 64)
	back := make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	for i := range n + 200 { // 200 warm-up round trips
		t := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return 0, err
		}
		if i >= 200 {
			rtts = append(rtts, time.Since(t))
		}
	}
	slices.Sort(rtts)
	return float64(rtts[len(rtts)/2].Nanoseconds()) / 1e3, nil
}

// connrate opens, uses (one echoed byte) and closes connections from
// workers goroutines for d; it returns connections per second and their
// number.
func connrate(cl *client, d time.Duration, workers int) (float64, int64, error) {
	var count atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go connWorker(cl, deadline, &count, &firstErr, &wg)
	}
	wg.Wait()
	n := count.Load()
	if err, _ := firstErr.Load().(error); err != nil && n == 0 {
		return 0, 0, err
	}
	return float64(n) / time.Since(start).Seconds(), n, nil
}

// connrateCPU prints the connection rate, the CPU time (user plus
// system, all threads) that process pid spent per connection meanwhile, in
// microseconds (on a shared machine it varies less than the rate), and the
// TCP segments the machine sent per connection (/proc/net/snmp): the
// packets each forwarder makes for the same exchange.
func connrateCPU(cl *client, d time.Duration, workers, pid int) error {
	before, err := procfs.ReadStat(pid)
	if err != nil {
		return err
	}
	segs0, err := procfs.TCPOutSegs()
	if err != nil {
		return err
	}
	rate, conns, err := connrate(cl, d, workers)
	if err != nil {
		return err
	}
	if conns == 0 {
		return errors.New("connrate: no connection completed")
	}
	after, err := procfs.ReadStat(pid)
	if err != nil {
		return err
	}
	segs1, err := procfs.TCPOutSegs()
	if err != nil {
		return err
	}
	ticks := after.CPUTicks() - before.CPUTicks()
	fmt.Printf("%.1f %.1f %.1f\n", rate, float64(ticks)*1e6/procfs.TicksPerSecond/float64(conns), float64(segs1-segs0)/float64(conns))
	return nil
}

func connWorker(cl *client, deadline time.Time, count *atomic.Int64, firstErr *atomic.Value, wg *sync.WaitGroup) {
	defer wg.Done()
	b := []byte{'E', 'x'}
	var back [1]byte
	for time.Now().Before(deadline) {
		c, err := cl.dial()
		if err != nil {
			firstErr.CompareAndSwap(nil, err)
			continue
		}
		if _, err := c.Write(b); err == nil {
			if _, err := io.ReadFull(c, back[:]); err == nil {
				count.Add(1)
			}
		}
		c.Close()
	}
}

// idle opens n connections, each proven piped by one echoed byte, and
// returns the growth of pid's resident memory per connection in KiB.
func idle(cl *client, n, pid int) (float64, error) {
	if pid == 0 {
		return 0, errors.New("idle needs -pid")
	}
	before, err := rss(pid)
	if err != nil {
		return 0, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var back [1]byte
	for range n {
		c, err := cl.dial()
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte{'E', 'x'}); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, back[:]); err != nil {
			return 0, err
		}
	}
	time.Sleep(time.Second) // let the forwarder settle (benchmark, not a test)
	after, err := rss(pid)
	if err != nil {
		return 0, err
	}
	runtime.KeepAlive(conns)
	return float64(after-before) / float64(n), nil
}

// rss returns VmRSS of pid in KiB.
func rss(pid int) (int64, error) {
	st, err := procfs.ReadStatus(pid)
	return st.RSSKiB, err
}

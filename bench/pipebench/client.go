package main

import (
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

func clientMain(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "address")
	up := fs.Int64("up", 0, "bytes to upload")
	down := fs.Int64("down", 0, "bytes to download")
	pings := fs.Int("ping", 0, "64-byte round trips to time")
	fs.Parse(args)
	if *pings > 0 {
		d, err := pingPong(*addr, *pings)
		if err != nil {
			return err
		}
		fmt.Printf("round trip %v\n", d)
	}
	if *up > 0 {
		start := time.Now()
		if err := upload(*addr, *up); err != nil {
			return err
		}
		d := time.Since(start)
		fmt.Printf("uploaded %d bytes in %v (%.0f MB/s)\n", *up, d, float64(*up)/d.Seconds()/1e6)
	}
	if *down > 0 {
		start := time.Now()
		if err := download(*addr, *down); err != nil {
			return err
		}
		d := time.Since(start)
		fmt.Printf("downloaded %d bytes in %v (%.0f MB/s)\n", *down, d, float64(*down)/d.Seconds()/1e6)
	}
	return nil
}

// upload sends n bytes and checks the server's count.
func upload(addr string, n int64) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	buf[0] = reqUpload
	if _, err := c.Write(buf[:1]); err != nil {
		return err
	}
	for left := n; left > 0; {
		m, err := c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(m)
		if err != nil {
			return fmt.Errorf("upload to %s: %w", addr, err)
		}
	}
	closeWrite(c)
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return fmt.Errorf("upload to %s: reading count: %w", addr, err)
	}
	if got != n {
		return fmt.Errorf("upload to %s: server got %d bytes, sent %d", addr, got, n)
	}
	return nil
}

// download asks for n bytes and reads them.
func download(addr string, n int64) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var req [9]byte
	req[0] = reqDownload
	binary.BigEndian.PutUint64(req[1:], uint64(n))
	if _, err := c.Write(req[:]); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	var got int64
	for {
		m, err := c.Read(buf)
		got += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("download from %s: %w", addr, err)
		}
	}
	if got != n {
		return fmt.Errorf("download from %s: got %d bytes, want %d", addr, got, n)
	}
	return nil
}

// parallel runs f on streams connections at once, total bytes split evenly.
func parallel(streams int, total int64, f func(int64) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Go(func() { errs <- f(total / int64(streams)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// pingPong does n round trips of 64 bytes and returns the mean time.
func pingPong(addr string, n int) (time.Duration, error) {
	c, err := dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{reqEcho}); err != nil {
		return 0, err
	}
	msg := make([]byte, 64)
	start := time.Now()
	for range n {
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// openIdle opens n connections through addr (TLS ones when withTLS), each
// answered once by the server, and returns them.
func openIdle(addr string, n int, withTLS bool) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := dial(addr)
		if err != nil {
			return conns, err
		}
		if withTLS {
			c = tls.Client(c, benchClientTLS)
		}
		conns = append(conns, c)
		var b [1]byte
		if _, err := c.Write([]byte{reqIdle}); err != nil {
			return conns, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return conns, fmt.Errorf("idle conn %d via %s: %w", len(conns), addr, err)
		}
	}
	return conns, nil
}

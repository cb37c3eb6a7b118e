package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
)

// serve runs the sink/echo server until killed.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	plain := fs.String("plain", "", "plain TCP address")
	tlsAddr := fs.String("tls", "", "TLS address (needs -cert and -key)")
	cert := fs.String("cert", "", "certificate file")
	key := fs.String("key", "", "key file")
	fs.Parse(args)
	errc := make(chan error, 2)
	if *plain != "" {
		ln, err := net.Listen("tcp", *plain)
		if err != nil {
			return err
		}
		go acceptLoop(ln, errc)
	}
	if *tlsAddr != "" {
		kp, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return err
		}
		ln, err := tls.Listen("tcp", *tlsAddr, &tls.Config{Certificates: []tls.Certificate{kp}})
		if err != nil {
			return err
		}
		go acceptLoop(ln, errc)
	}
	return <-errc
}

func acceptLoop(ln net.Listener, errc chan<- error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			errc <- fmt.Errorf("accept: %w", err)
			return
		}
		go serveConn(c)
	}
}

// serveConn answers one client: 'B' bulk sink, 'D' bulk source (writes
// until the client goes), 'E' echo.
func serveConn(c net.Conn) {
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case 'B':
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], uint64(n))
		c.Write(out[:])
	case 'D':
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	case 'E':
		r := bufio.NewReaderSize(c, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

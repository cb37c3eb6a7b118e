package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

// Requests, the first byte a client sends:
const (
	reqUpload   = 'U' // then bytes until EOF; the server answers the count (8 bytes)
	reqDownload = 'D' // then an 8-byte count; the server sends that many bytes and EOF
	reqEcho     = 'E' // echo everything
	reqIdle     = 'I' // the server answers 'k' and waits for EOF
)

func serverMain(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address")
	fs.Parse(args)
	if n, a := splitAddr(*addr); n == "unix" {
		os.Remove(a)
	}
	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	fmt.Println("ready", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("server accept on %s: %w", *addr, err)
		}
		go serveConn(c)
	}
}

func serveConn(c net.Conn) {
	defer c.Close()
	var req [1]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	switch req[0] {
	case reqUpload:
		buf := make([]byte, 256<<10)
		var n int64
		for {
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				if errors.Is(err, io.EOF) {
					binary.Write(c, binary.BigEndian, n)
				}
				return
			}
		}
	case reqDownload:
		var n int64
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		buf := make([]byte, 256<<10)
		for n > 0 {
			m, err := c.Write(buf[:min(int64(len(buf)), n)])
			n -= int64(m)
			if err != nil {
				return
			}
		}
		closeWrite(c)
		io.Copy(io.Discard, c)
	case reqEcho:
		buf := make([]byte, 64<<10)
		io.CopyBuffer(c, struct{ io.Reader }{c}, buf)
	case reqIdle:
		c.Write([]byte{'k'})
		var b [1]byte
		c.Read(b[:])
	}
}

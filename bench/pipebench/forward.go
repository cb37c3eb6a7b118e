package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/tlsconf"
)

// forwardMain accepts connections and joins each with a new connection to
// the upstream, through pipegate's pipe (mode pipe) or two io.Copy
// goroutines (mode naive).
func forwardMain(args []string) error {
	fs := flag.NewFlagSet("forward", flag.ExitOnError)
	mode := fs.String("mode", "pipe", "pipe or naive")
	addr := fs.String("listen", "127.0.0.1:0", "address")
	up := fs.String("upstream", "", "upstream address")
	withTLS := fs.Bool("tls", false, "terminate TLS (self-signed) on the listening side")
	fs.Parse(args)
	if n, a := splitAddr(*addr); n == "unix" {
		os.Remove(a)
	}
	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	if *withTLS {
		cert, err := tlsconf.SelfSigned("127.0.0.1")
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	var eng pipe.Engine
	reportMemOnSignal()
	fmt.Println("ready", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("forward accept on %s: %w", *addr, err)
		}
		switch *mode {
		case "pipe":
			go forwardPipe(&eng, c, *up)
		default:
			go forwardNaive(c, *up)
		}
	}
}

func forwardPipe(eng *pipe.Engine, c net.Conn, up string) {
	u, err := dial(up)
	if err != nil {
		c.Close()
		return
	}
	if eng.Enter(c, u, nil) != nil {
		c.Close()
		u.Close()
	}
}

func forwardNaive(c net.Conn, up string) {
	u, err := dial(up)
	if err != nil {
		c.Close()
		return
	}
	done := make(chan struct{})
	go naiveCopy(u, c, done)
	naiveCopy(c, u, nil)
	<-done
	c.Close()
	u.Close()
}

func naiveCopy(dst, src net.Conn, done chan<- struct{}) {
	io.Copy(dst, src)
	closeWrite(dst)
	if done != nil {
		close(done)
	}
}

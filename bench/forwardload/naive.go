package main

import (
	"crypto/tls"
	"flag"
	"io"
	"net"
)

// naive is the forwarder everyone writes first: two io.Copy goroutines per
// connection (TLS termination with crypto/tls when -cert is set).
func naive(args []string) error {
	fs := flag.NewFlagSet("naive", flag.ExitOnError)
	listen := fs.String("listen", "", "address to accept on")
	to := fs.String("to", "", "upstream address")
	cert := fs.String("cert", "", "terminate TLS with this certificate")
	key := fs.String("key", "", "key of -cert")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *cert != "" {
		kp, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{kp}})
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go naiveConn(c, *to)
	}
}

func naiveConn(c net.Conn, to string) {
	up, err := net.Dial("tcp", to)
	if err != nil {
		c.Close()
		return
	}
	done := make(chan struct{})
	go naiveCopy(up, c, done)
	naiveCopy(c, up, nil)
	<-done
	c.Close()
	up.Close()
}

func naiveCopy(dst, src net.Conn, done chan<- struct{}) {
	io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if done != nil {
		close(done)
	}
}

// Command corefwd is the benchmark twin of evfwd that joins each accepted
// connection with its upstream through the pipe core's goroutine flavour
// (pipe.Go), so bench/evloop.sh can compare the two engines in one run.
//
//	corefwd -listen 127.0.0.1:17104 -to 127.0.0.1:17100
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"pipegate/pipe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:17104", "address to accept on")
	to := flag.String("to", "127.0.0.1:17100", "upstream address")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("corefwd: %v", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go closeOnSignal(sig, ln)
	fmt.Printf("corefwd listening on %s, forwarding to %s (pid %d)\n", ln.Addr(), *to, os.Getpid())
	for {
		a, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			log.Printf("corefwd: accept: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, err := net.Dial("tcp", *to)
		if err != nil {
			log.Printf("corefwd: dial %s: %v", *to, err)
			a.Close()
			continue
		}
		pipe.Go(a, b, nil, nil)
	}
}

func closeOnSignal(sig chan os.Signal, ln net.Listener) {
	<-sig
	ln.Close()
}

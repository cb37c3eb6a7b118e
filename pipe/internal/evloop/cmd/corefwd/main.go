// Command corefwd is the benchmark twin of evfwd that joins each accepted
// connection with its upstream through the pipe core's public API: pipe.Go
// (-engine go, the goroutine flavour) or pipe.Engine.Enter with
// FlavourAuto (-engine auto: event loops for these plain TCP pairs) or
// FlavourGoroutines, so bench/evloop.sh can compare them in one run.
//
//	corefwd -listen 127.0.0.1:17104 -to 127.0.0.1:17100 -engine auto -loops 1
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

	"github.com/pipegate/pipegate/pipe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:17104", "address to accept on")
	to := flag.String("to", "127.0.0.1:17100", "upstream address")
	mode := flag.String("engine", "go", "go (pipe.Go), auto or goroutines (pipe.Engine flavours)")
	loops := flag.Int("loops", 0, "Engine.Loops (0: GOMAXPROCS)")
	flag.Parse()
	var eng *pipe.Engine
	switch *mode {
	case "go":
	case "auto":
		eng = &pipe.Engine{Flavour: pipe.FlavourAuto, Loops: *loops}
	case "goroutines":
		eng = &pipe.Engine{Flavour: pipe.FlavourGoroutines}
	default:
		log.Fatalf("corefwd: -engine %q: want go, auto or goroutines", *mode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("corefwd: %v", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go closeOnSignal(sig, ln)
	fmt.Printf("corefwd (%s) listening on %s, forwarding to %s (pid %d)\n", *mode, ln.Addr(), *to, os.Getpid())
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
		if eng == nil {
			pipe.Go(a, b, nil, nil)
			continue
		}
		if err := eng.Enter(a, b, nil); err != nil {
			log.Printf("corefwd: enter: %v", err)
			a.Close()
			b.Close()
		}
	}
}

func closeOnSignal(sig chan os.Signal, ln net.Listener) {
	<-sig
	ln.Close()
}

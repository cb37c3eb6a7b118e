// Command evfwd is a minimal TCP port forwarder for benchmarks
// (bench/evloop.sh): every accepted connection is joined with a new
// connection to -to, either by the evloop engine or by a naive pair of
// io.Copy goroutines.
//
//	evfwd -listen 127.0.0.1:17101 -to 127.0.0.1:17100 -mode evloop -loops 1
//
// It lives under pipe/internal/evloop because Go's internal rule lets only
// code below pipe/ import the engine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:17101", "address to accept on")
	to := flag.String("to", "127.0.0.1:17100", "upstream address")
	mode := flag.String("mode", "evloop", "evloop or naive (two io.Copy goroutines)")
	loops := flag.Int("loops", 0, "evloop loops (0: GOMAXPROCS)")
	noSplice := flag.Bool("nosplice", false, "evloop: pooled buffers instead of splice")
	pipeSize := flag.Int("pipesize", 0, "evloop: kernel pipe size in bytes (0: default)")
	flag.Parse()
	if err := run(*listen, *to, *mode, evloop.Config{Loops: *loops, NoSplice: *noSplice, PipeSize: *pipeSize}); err != nil {
		log.Fatalf("evfwd: %v", err)
	}
}

func run(listen, to, mode string, cfg evloop.Config) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	var join func(a, b net.Conn)
	switch mode {
	case "evloop":
		g, err := evloop.New(cfg)
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			g.Shutdown(ctx)
		}()
		join = func(a, b net.Conn) { joinEvloop(g, a, b) }
	case "naive":
		join = joinNaive
	default:
		return fmt.Errorf("-mode %q: want evloop or naive", mode)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go closeOnSignal(sig, ln)
	fmt.Printf("evfwd %s listening on %s, forwarding to %s (pid %d)\n", mode, ln.Addr(), to, os.Getpid())
	for {
		a, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil // listener closed by a signal
		}
		if err != nil { // e.g. out of files: naive mode holds 6 per pair
			log.Printf("evfwd: accept: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, err := net.Dial("tcp", to)
		if err != nil {
			log.Printf("evfwd: dial %s: %v", to, err)
			a.Close()
			continue
		}
		join(a, b)
	}
}

func closeOnSignal(sig chan os.Signal, ln net.Listener) {
	<-sig
	ln.Close()
}

func joinEvloop(g *evloop.Group, a, b net.Conn) {
	ea, eb, err := evloop.TakePair(a, b)
	if err != nil {
		log.Printf("evfwd: %v", err)
		a.Close()
		b.Close()
		return
	}
	if err := g.Add(ea, eb, core.Options{}, nil); err != nil {
		ea.Close()
		eb.Close()
	}
}

func joinNaive(a, b net.Conn) {
	left := new(atomic.Int32)
	left.Store(2)
	go copyHalf(a, b, left)
	go copyHalf(b, a, left)
}

// copyHalf is one direction of the naive forwarder; the last one to finish
// closes both conns.
func copyHalf(dst, src net.Conn, left *atomic.Int32) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		cw.CloseWrite()
	} else {
		dst.Close()
		src.Close()
	}
	if left.Add(-1) == 0 {
		dst.Close()
		src.Close()
	}
}

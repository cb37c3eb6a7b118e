// Command pipemem measures where the memory of idle pairs goes in the pipe
// core's forwarder, by the Go runtime's own accounts: it runs a forwarder
// (TLS terminated on the client side, or plain) through pipe.Engine in
// this process, and the clients and the upstream server in a child process
// (so that their memory is not counted), opens -n pairs, each answered
// once, then reports heap, stack and goroutine deltas per pair and writes a
// heap profile for `go tool pprof`.
//
//	go run ./bench/pipemem -n 5000 -tls -heap /tmp/tls.heap
//	go tool pprof -sample_index=inuse_space -top /tmp/tls.heap
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/tlsconf"
)

func main() {
	n := flag.Int("n", 5000, "idle pairs")
	withTLS := flag.Bool("tls", false, "terminate TLS on the client side")
	flavour := flag.String("flavour", "auto", "Engine flavour: auto or goroutines")
	heap := flag.String("heap", "", "write a heap profile here")
	settle := flag.Duration("settle", 2*time.Second, "wait this long after the pairs are idle before measuring (idle TLS directions move to fresh goroutines after 1 s)")
	stacks := flag.Bool("stacks", false, "print where the goroutines wait (pprof goroutine profile)")
	child := flag.String("child", "", "internal: run the clients against this forwarder address")
	flag.Parse()
	var err error
	if *child != "" {
		err = runClients(*child, *n, *withTLS)
	} else {
		err = runForwarder(*n, *withTLS, *flavour, *heap, *stacks, *settle)
	}
	if err != nil {
		log.Fatalf("pipemem: %v", err)
	}
}

// runForwarder accepts -n pairs from the child and joins each with a
// connection to the child's upstream server.
func runForwarder(n int, withTLS bool, flavour, heapFile string, stacks bool, settle time.Duration) error {
	runtime.MemProfileRate = 512 // fine-grained: the profile is the point
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	if withTLS {
		cert, err := tlsconf.SelfSigned("127.0.0.1")
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	eng := &pipe.Engine{}
	if flavour == "goroutines" {
		eng.Flavour = pipe.FlavourGoroutines
	}
	args := []string{"-child", ln.Addr().String(), "-n", fmt.Sprint(n)}
	if withTLS {
		args = append(args, "-tls")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer in.Close()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		return errors.New("child sent no upstream address")
	}
	upstream := strings.TrimPrefix(lines.Text(), "upstream ")
	before := sample()
	for i := range n {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept pair %d: %w", i, err)
		}
		if tc, ok := c.(*tls.Conn); ok {
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("handshake pair %d: %w", i, err)
			}
		}
		u, err := net.Dial("tcp", upstream)
		if err != nil {
			return fmt.Errorf("dial upstream for pair %d: %w", i, err)
		}
		if err := eng.Enter(c, u, nil); err != nil {
			return err
		}
	}
	if !lines.Scan() || lines.Text() != "idle" {
		return errors.New("child did not report its pairs idle")
	}
	time.Sleep(settle)
	after := sample()
	if heapFile != "" {
		f, err := os.Create(heapFile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	if stacks {
		_ = pprof.Lookup("goroutine").WriteTo(os.Stdout, 1)
	}
	mode := "plain"
	if withTLS {
		mode = "TLS"
	}
	fmt.Printf("%d idle %s pairs through pipe.Engine (%s), per pair:\n", n, mode, flavour)
	for i, name := range sampleNames {
		d := float64(int64(after[i])-int64(before[i])) / float64(n)
		if strings.HasSuffix(name, ":bytes") {
			fmt.Printf("  %-40s %8.2f KiB\n", name, d/1024)
		} else {
			fmt.Printf("  %-40s %8.2f\n", name, d)
		}
	}
	return nil
}

var sampleNames = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/sched/goroutines:goroutines",
	"/memory/classes/total:bytes",
}

// sample reads the runtime's figures after full collections (each halves
// the stacks of idle goroutines that use under a quarter of theirs).
func sample() []uint64 {
	for range 5 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	s := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		s[i].Name = n
	}
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		v[i] = s[i].Value.Uint64()
	}
	return v
}

// runClients (the child) serves as upstream (each conn answers one byte
// once) and opens n client conns through the forwarder, then reports
// "idle" and holds them until stdin closes.
func runClients(fwd string, n int, withTLS bool) error {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go serveUpstream(up)
	fmt.Println("upstream", up.Addr())
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", fwd)
		if err != nil {
			return fmt.Errorf("dial pair %d: %w", i, err)
		}
		if withTLS {
			c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		}
		if _, err := c.Write([]byte{'?'}); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return fmt.Errorf("pair %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("idle")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

func serveUpstream(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go answerOnce(c)
	}
}

// answerOnce echoes one byte and then holds the conn without a goroutine
// of its own... it returns, and the conn stays open until the process ends.
func answerOnce(c net.Conn) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err == nil {
		_, _ = c.Write(b[:])
	}
	held <- c
}

var held = make(chan net.Conn, 1<<20)

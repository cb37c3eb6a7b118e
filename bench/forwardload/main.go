// Command forwardload is the load generator of bench/forward.sh: it runs a
// sink/echo server, a naive Go forwarder to compare with, and the client
// measurements (bulk throughput, ping-pong latency, connection rate,
// memory per idle connection).
//
//	forwardload serve -plain 127.0.0.1:9000 -tls 127.0.0.1:9001 -cert c.pem -key k.pem
//	forwardload naive -listen 127.0.0.1:9100 -to 127.0.0.1:9000 [-cert c.pem -key k.pem]
//	forwardload bulk -addr 127.0.0.1:9100 [-tls -ca c.pem] -duration 2s   # prints MB/s
//	forwardload bulkdown -addr 127.0.0.1:9100 -duration 2s -pid PID       # prints MB/s and PID's CPU-s/GB
//	forwardload pingpong -addr 127.0.0.1:9100 -n 5000                     # prints p50 µs
//	forwardload connrate -addr 127.0.0.1:9100 -duration 2s -workers 4     # prints conn/s
//	forwardload connrate -addr 127.0.0.1:9100 -duration 2s -pid PID       # and PID's µs of CPU, the machine's TCP segments, per conn
//	forwardload idle -addr 127.0.0.1:9100 -tls -ca c.pem -n 1000 -pid PID # prints KiB/conn
//
// A client's first byte picks the server's behaviour: 'B' reads until EOF
// and answers the byte count (8 bytes, big endian); 'D' writes until the
// client goes; 'E' echoes.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: forwardload serve|naive|bulk|bulkdown|pingpong|connrate|idle [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "naive":
		err = naive(args)
	case "bulk", "bulkdown", "pingpong", "connrate", "idle":
		err = measure(cmd, args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "forwardload:", err)
		os.Exit(1)
	}
}

// Command pipebench compares, in one run on loopback, a direct connection
// with the same traffic through pipegate's pipe core, a naive Go forwarder
// (two io.Copy goroutines) and HAProxy, reporting ratios to direct.
//
// bench/pipe.sh builds it, starts HAProxy and runs:
//
//	pipebench run -server 127.0.0.1:P -pipe 127.0.0.1:P+1 -naive 127.0.0.1:P+2 \
//	    -haproxy 127.0.0.1:P+3 -haproxy-pid PID
//
// Roles (the run role starts the others as child processes):
//
//	pipebench server  -listen ADDR                      upstream: sink, source, echo, idle
//	pipebench forward -mode pipe|naive -listen ADDR -upstream ADDR
//	pipebench client  -addr ADDR -up BYTES -down BYTES  one upload, one download (strace runs)
//
// An ADDR of the form unix:/path is a Unix socket.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipebench run|server|forward|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "server":
		err = serverMain(os.Args[2:])
	case "forward":
		err = forwardMain(os.Args[2:])
	case "client":
		err = clientMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown role %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
}

// Command imapidle measures the memory an IMAP proxy spends per idle,
// logged-in session when clients speak implicit TLS (993-style) to it and
// it speaks plain IMAP to the backend: `pipegate imap` side by side with
// HAProxy terminating TLS (mode tcp, nbthread 1), in the same run.
// bench/imapidle.sh builds everything and runs it:
//
//	bench/imapidle.sh              # 9000 sessions per target: pipegate, then HAProxy
//	N=1000 bench/imapidle.sh       # quick run
//
// Each part runs in its own process, so that none needs more than the
// machine's 20,000 open files and the proxy's RSS is its own:
//
//	imapidle cert -dir DIR                           # server.crt, server.key, server.pem (both, for HAProxy)
//	imapidle backend -listen ADDR -users N           # go-imap in-memory server, plain IMAP, user0@a.test ...
//	imapidle clients -name T -addr ADDR -pid PID -n N  # N idle TLS sessions through T; measures PID
//
// A client session connects, completes the TLS handshake, reads the
// greeting, logs in as its own account, selects INBOX and sends IDLE, then
// waits for the server's "+ idling" and stays there, as a mail client does.
// The proxy's RSS (VmRSS) and open files are read from /proc after a few
// warm-up sessions, at N/2 and at N sessions; the growth per session is
// printed from warm-up to N and from N/2 to N (the latter leaves out
// start-up costs and lazily grown tables).
package main

import (
	"fmt"
	"os"
)

// Every account has this password; the backend and the clients agree on
// the names through userName.
const password = "bench-pw"

func userName(i int) string { return fmt.Sprintf("user%d@a.test", i) }

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var code int
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "cert":
		code = runCert(args)
	case "backend":
		code = runBackend(args)
	case "clients":
		code = runClients(args)
	default:
		usage()
		code = 2
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: imapidle cert|backend|clients [flags]  (see bench/imapidle.sh)`)
}

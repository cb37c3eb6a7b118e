package benchproc

import (
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// helperEnv makes the test binary a server for the process tests:
// "listen ADDR" listens on ADDR until killed; "fail" writes to its log
// and exits 3; "mute" listens on nothing until killed.
const helperEnv = "BENCHPROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(helper(mode))
	}
	goleak.VerifyTestMain(m)
}

func helper(mode string) int {
	var addr string
	switch {
	case mode == "fail":
		fmt.Fprintln(os.Stderr, "helper: bad config, line 3")
		return 3
	case mode == "mute":
		select {} // until Stop's signal
	case len(mode) > 7 && mode[:7] == "listen ":
		addr = mode[7:]
	default:
		fmt.Fprintf(os.Stderr, "helper: unknown mode %q\n", mode)
		return 2
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		c.Close()
	}
}

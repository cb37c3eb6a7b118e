package benchproc_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

// A server started, its login rate measured, and stopped.
func ExampleStart() {
	p, err := benchproc.Start(context.Background(), benchproc.Server{
		Name:   "pipegate",
		Argv:   []string{"bin/pipegate", "imap", "--config", "/tmp/bench/pipegate.yaml"},
		Log:    "/tmp/bench/pipegate.log",
		Listen: []string{"127.0.0.1:10143"},
	})
	if err != nil {
		fmt.Println(err) // why, with the log's content
		return
	}
	defer p.Stop()
	rate, err := benchproc.LoginRate(50, func() (io.Closer, error) {
		return net.Dial("tcp", "127.0.0.1:10143") // a bench logs in here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f logins/s\n", rate)
}

// Per-round figures of two lines, each round in a rotating order, and the
// per-round ratios' spread.
func ExampleSpreadOf() {
	lines := []string{"direct", "proxy"}
	for r := range 3 {
		fmt.Println(benchproc.Rotate(lines, r))
	}
	direct := []float64{1000, 1100, 900}
	proxy := []float64{800, 990, 810}
	fmt.Println(benchproc.SpreadOf(benchproc.Ratios(proxy, direct)).Format(2))
	// Output:
	// [direct proxy]
	// [proxy direct]
	// [direct proxy]
	// 0.90 (0.80-0.90)
}

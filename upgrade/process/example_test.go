package process_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/pipegate/pipegate/upgrade/process"
)

// A daemon's life without an upgrade: its listener is opened through the
// Upgrader (which keeps a duplicate to hand over on SIGUSR2), it serves
// (the pid file is written), it drains and stops (the pid file goes).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "process-example")
	defer os.RemoveAll(dir)
	opts := &process.Options{
		PIDFile: filepath.Join(dir, "pipegate.pid"),
		Dir:     filepath.Join(dir, "run"),
		Timeout: process.DefaultTimeout,
	}
	up, err := process.New("forward", []string{"--listen", "127.0.0.1:0"}, opts, io.Discard, io.Discard)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := up.TakeOver(ctx); err != nil { // no --upgrade-from: nothing to take
		fmt.Println(err)
		return
	}
	up.SetLog(slog.New(slog.DiscardHandler))
	listen := up.Listen("forward", func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) })
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := up.Serving(ctx); err != nil {
		fmt.Println(err)
		return
	}
	pid, err := process.ReadPIDFile(opts.PIDFile)
	fmt.Println("pid file names this process:", err == nil && pid == os.Getpid())

	up.Stopping() // SIGTERM: the daemon drains
	ln.Close()
	up.Wait()
	up.Close()
	_, err = os.Stat(opts.PIDFile)
	fmt.Println("pid file removed:", os.IsNotExist(err))
	// Output:
	// pid file names this process: true
	// pid file removed: true
}

package upgrade_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/pipegate/pipegate/upgrade"
)

// newProcess plays the new binary: it takes the listeners, "loads its
// config", serves, and tells the old one it is ready.
func newProcess(ctx context.Context, sock string, served chan<- net.Listener) error {
	c, err := upgrade.Dial(ctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := upgrade.RecvListeners(ctx, c)
	if err != nil {
		c.Failed(ctx, err.Error())
		return err
	}
	served <- ls["listen[0]"]
	return c.Ready(ctx)
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "upgrade-example")
	defer os.RemoveAll(dir)

	// The old process serves on ln.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := upgrade.Listen(filepath.Join(dir, "run", "upgrade.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// The new process starts (here: a goroutine) and dials.
	served := make(chan net.Listener, 1)
	newDone := make(chan error, 1)
	go func() { newDone <- newProcess(ctx, srv.Path(), served) }()

	c, err := srv.Accept(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := upgrade.SendListeners(ctx, c, []net.Listener{ln}, []string{"listen[0]"}); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.WaitReady(ctx); err != nil {
		fmt.Println("rolled back, still serving:", err)
		return
	}
	ln.Close() // the old process stops accepting; the socket stays open
	nl := <-served
	defer nl.Close()
	fmt.Println("new process ready:", <-newDone == nil)
	fmt.Println("same address:", nl.Addr().String() == ln.Addr().String())
	// Output:
	// new process ready: true
	// same address: true
}

package evloop_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// A forwarder: each accepted client is joined with a backend connection and
// handed to the Group, which holds no goroutine for it while it is idle.
func ExampleGroup_Add() {
	backend, _ := net.Listen("tcp", "127.0.0.1:0")
	defer backend.Close()
	go func() { // a backend that greets and hangs up
		c, _ := backend.Accept()
		c.Write([]byte("hello from the backend\n"))
		c.Close()
	}()
	front, _ := net.Listen("tcp", "127.0.0.1:0")
	defer front.Close()

	g, err := evloop.New(evloop.Config{Loops: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Shutdown(context.Background())

	client, _ := net.Dial("tcp", front.Addr().String())
	defer client.Close()
	a, _ := front.Accept()
	b, _ := net.Dial("tcp", backend.Addr().String())
	ea, err := evloop.FromConn(a) // a is closed; the Group will own its socket
	if err != nil {
		fmt.Println(err)
		return
	}
	eb, err := evloop.FromConn(b)
	if err != nil {
		ea.Close()
		fmt.Println(err)
		return
	}
	ended := make(chan core.Result, 1)
	if err := g.Add(ea, eb, core.Options{}, func(s core.Result) { ended <- s }); err != nil {
		ea.Close()
		eb.Close()
		fmt.Println(err)
		return
	}

	greeting, _ := io.ReadAll(client) // until the backend's EOF arrives
	fmt.Print(string(greeting))
	client.(*net.TCPConn).CloseWrite()
	s := <-ended
	fmt.Println(s.FirstEnd, s.Reason, s.BytesBToA)
	// Output:
	// hello from the backend
	// b eof 23
}

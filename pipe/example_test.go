package pipe_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// loopbackPair returns both ends of a fresh loopback TCP connection.
func loopbackPair() (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	return c, <-accepted
}

// A proxy joins the connection it accepted with the one it dialed.
func ExampleJoin() {
	client, fromClient := loopbackPair() // client ↔ proxy
	toServer, server := loopbackPair()   // proxy ↔ server
	go func() {
		client.Write([]byte("hello"))
		client.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, client)
		client.Close()
	}()
	go func() {
		b, _ := io.ReadAll(server) // "hello", then EOF
		server.Write([]byte(fmt.Sprintf("got %d bytes", len(b))))
		server.Close()
	}()

	res := pipe.Join(context.Background(), fromClient, toServer, &pipe.Options{IdleTimeout: time.Minute})
	fmt.Println(res.BytesAToB, res.BytesBToA, res.FirstEnd, res.Reason)
	// Output: 5 11 a eof
}

// Go runs the pipe in the background; bytes already read from a conn
// (here a protocol greeting) are handed over with WithPrefix.
func ExampleGo() {
	client, fromClient := loopbackPair()
	toServer, server := loopbackPair()
	greeting := make([]byte, 4)
	client.Write([]byte("HI! and the rest"))
	io.ReadFull(fromClient, greeting) // the proxy looked at the first bytes

	done := make(chan pipe.Result)
	pipe.Go(pipe.WithPrefix(fromClient, greeting), toServer, nil, func(r pipe.Result) { done <- r })

	buf := make([]byte, 16)
	io.ReadFull(server, buf)
	fmt.Printf("%q\n", buf)
	client.Close()
	server.Close()
	r := <-done
	fmt.Println(r.BytesAToB)
	// Output:
	// "HI! and the rest"
	// 16
}

// An Engine counts its pipes and drains them on shutdown.
func ExampleEngine() {
	eng := &pipe.Engine{Options: pipe.Options{IdleTimeout: time.Hour}}
	client, fromClient := loopbackPair()
	toServer, server := loopbackPair()
	if err := eng.Enter(fromClient, toServer, func(r pipe.Result) { fmt.Println("ended:", r.Reason) }); err != nil {
		panic(err)
	}
	client.Write([]byte("ping"))
	io.ReadFull(server, make([]byte, 4))
	fmt.Println("open:", eng.Stats().Open)

	// Give running pipes a moment to finish, then stop them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := eng.Shutdown(ctx)
	fmt.Println(err)
	fmt.Printf("%+v\n", eng.Stats())
	fmt.Println(eng.Enter(client, server, nil))
	client.Close()
	server.Close()
	// Output:
	// open: 1
	// ended: shutdown
	// context deadline exceeded
	// {Open:0 OnLoops:0 Total:1 BytesAToB:4 BytesBToA:0 Fallbacks:map[]}
	// pipe: engine is shutting down
}

// Flavour chooses how an Engine runs its pipes. The zero value,
// FlavourAuto, puts pairs of plain TCP or Unix sockets (bytes already
// peeked included) on epoll event loops on Linux, where an idle pair holds
// no goroutine; TLS and other conns run on goroutines. FlavourGoroutines
// runs every pipe on goroutines. Both behave the same.
func ExampleEngine_flavour() {
	eng := &pipe.Engine{
		Options: pipe.Options{IdleTimeout: 30 * time.Minute},
		Flavour: pipe.FlavourAuto, // the default
		Loops:   1,                // event loops; 0: GOMAXPROCS
	}
	client, fromClient := loopbackPair()
	toServer, server := loopbackPair()
	greeting := make([]byte, 6)
	client.Write([]byte("HELLO ping"))
	io.ReadFull(fromClient, greeting) // the proxy looked at the first bytes

	done := make(chan pipe.Result, 1)
	if err := eng.Enter(pipe.WithPrefix(fromClient, greeting), toServer, func(r pipe.Result) { done <- r }); err != nil {
		panic(err)
	}
	buf := make([]byte, 10)
	io.ReadFull(server, buf)
	fmt.Printf("%q\n", buf)
	client.Close()
	io.ReadAll(server) // the client's end reaches the server as EOF
	server.Close()
	r := <-done
	fmt.Println(r.BytesAToB, r.Reason)
	fmt.Println(eng.Shutdown(context.Background()))
	// Output:
	// "HELLO ping"
	// 10 eof
	// <nil>
}

package pipe_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/pipegate/pipegate/pipe"
)

// A plain TCP forwarder whose event loops accept, connect the upstream and
// pipe, with no goroutine per connection. Here the first upstream refuses
// and the loop fails over to the second.
func ExampleEngine_Listen() {
	upstream, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		c, _ := upstream.Accept()
		b, _ := io.ReadAll(c)
		fmt.Fprintf(c, "upstream got %q", b)
		c.Close()
	}()
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	refused.Close() // nobody listens there any more
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort(refused.Addr().String()),
		netip.MustParseAddrPort(upstream.Addr().String()),
	}

	var e pipe.Engine
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan pipe.Result, 1)
	_, err := e.Listen(ln, pipe.Acceptor{Accept: func(a *pipe.Accepted) *pipe.Setup {
		i := 0
		return &pipe.Setup{
			Next: func(prev error) (netip.AddrPort, bool) {
				if prev != nil {
					fmt.Println("connect failed:", prev)
				}
				if i == len(addrs) {
					return netip.AddrPort{}, false
				}
				i++
				return addrs[i-1], true
			},
			AfterClose: func(r pipe.Result) { done <- r },
		}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	c, _ := net.Dial("tcp", ln.Addr().String())
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))
	r := <-done
	fmt.Println(r.BytesAToB, r.BytesBToA, r.Reason)
	e.Shutdown(context.Background())
	upstream.Close()
	// Output:
	// connect failed: connect: connection refused
	// upstream got "hello"
	// 5 20 eof
}

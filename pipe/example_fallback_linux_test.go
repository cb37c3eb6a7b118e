package pipe_test

import (
	"context"
	"fmt"
	"net"

	"github.com/pipegate/pipegate/pipe"
)

// Stats.Fallbacks counts the pipes that missed the event loops, by reason;
// AllFallbacks gives every reason, for a counter with a label per reason
// (zeros included), such as pipegate_engine_fallbacks_total{reason}.
func ExampleAllFallbacks() {
	var eng pipe.Engine
	client, fromClient := loopbackPair()
	toServer, server := net.Pipe() // not a socket: goroutines
	if err := eng.Enter(fromClient, toServer, nil); err != nil {
		panic(err)
	}
	s := eng.Stats()
	for _, f := range pipe.AllFallbacks() {
		if f == pipe.FallbackConnType || f == pipe.FallbackTLSVersion {
			fmt.Printf("reason=%s %d\n", f, s.Fallbacks[f])
		}
	}
	client.Close()
	server.Close()
	fmt.Println(eng.Shutdown(context.Background()))
	// Output:
	// reason=conn-type 1
	// reason=tls-version 0
	// <nil>
}

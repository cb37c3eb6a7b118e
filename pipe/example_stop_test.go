package pipe_test

import (
	"context"
	"fmt"
	"io"

	"github.com/pipegate/pipegate/pipe"
)

// A mail gateway moves a user to another backend: it ends the user's piped
// session with the protocol's goodbye. The client gets every byte the
// backend sent before the stop, then the farewell, then EOF.
func ExampleHandle_Stop() {
	var eng pipe.Engine
	client, fromClient := loopbackPair() // the mail client: side A
	toBackend, backend := loopbackPair() // the backend: side B
	ended := make(chan pipe.Result, 1)
	h, err := eng.Start(fromClient, toBackend, func(r pipe.Result) { ended <- r })
	if err != nil {
		panic(err)
	}
	backend.Write([]byte("* 3 EXISTS\r\n"))
	io.ReadFull(client, make([]byte, 12)) // the client has it

	h.Stop([]byte("* BYE Moved to another server\r\n"))
	rest, _ := io.ReadAll(client)
	fmt.Printf("client read %q\n", rest)
	<-h.Done()  // afterClose has returned
	h.Stop(nil) // too late: does nothing
	r := <-ended
	fmt.Println("ended:", r.Reason, r.FirstEnd, r.BytesBToA)

	client.Close()
	backend.Close()
	fmt.Println(eng.Shutdown(context.Background()))
	// Output:
	// client read "* BYE Moved to another server\r\n"
	// ended: stopped none 43
	// <nil>
}

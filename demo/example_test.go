package demo_test

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/demo"
)

// Start a demo on free loopback ports and log in through the proxy.
func Example() {
	d, err := demo.Start(demo.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Shutdown(context.Background())

	c, err := imapclient.DialInsecure(d.PlainAddr, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	bob := d.Accounts[2]
	if err := c.Login(bob.User, bob.Password).Wait(); err != nil {
		fmt.Println(err)
		return
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s has %d messages on backend %d\n", bob.User, sel.NumMessages, bob.Backend+1)
	// Output: bob@b.test has 2 messages on backend 2
}

package limit_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pipegate/pipegate/limit"
)

func ExampleConns() {
	conns := limit.NewConns(100, 2) // at most 100 in total, 2 per client address
	ip := netip.MustParseAddr("192.0.2.7")
	for i := 1; i <= 3; i++ {
		release, err := conns.Acquire(ip)
		var ex *limit.Exceeded
		if errors.As(err, &ex) {
			fmt.Printf("connection %d refused: %s limit %d\n", i, ex.Limit, ex.Max)
			continue
		}
		defer release()
		fmt.Printf("connection %d accepted, %d open\n", i, conns.Open())
	}
	// Output:
	// connection 1 accepted, 1 open
	// connection 2 accepted, 2 open
	// connection 3 refused: per-ip limit 2
}

func ExamplePenalty() {
	ctx := context.Background()
	p := &limit.Penalty{} // in-process store, Dovecot-like defaults
	ip := netip.MustParseAddr("2001:db8::1")
	for range 4 {
		p.Fail(ctx, ip)
		fmt.Print(p.Delay(ctx, ip), " ")
	}
	// Another address in the same /64 shares the penalty.
	fmt.Println(p.Delay(ctx, netip.MustParseAddr("2001:db8::2")))
	p.Success(ctx, ip)
	fmt.Println(p.Delay(ctx, ip))
	// Output:
	// 2s 4s 8s 15s 15s
	// 0s
}

package listenaddr_test

import (
	"fmt"

	"github.com/pipegate/pipegate/internal/listenaddr"
)

func ExampleConflict() {
	fmt.Println(listenaddr.Conflict("0.0.0.0:11143", ":11143"))
	fmt.Println(listenaddr.Conflict("127.0.0.1:11143", "127.0.0.2:11143"))
	fmt.Println(listenaddr.Conflict("127.0.0.1:0", "127.0.0.1:0"))
	fmt.Println(listenaddr.Check("127.0.0.1:99999"))
	// Output:
	// true
	// false
	// false
	// "127.0.0.1:99999": port "99999" is not a number from 0 to 65535
}

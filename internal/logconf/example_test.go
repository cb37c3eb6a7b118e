package logconf_test

import (
	"fmt"
	"io"

	"github.com/pipegate/pipegate/internal/logconf"
)

func ExampleNew() {
	if _, err := logconf.New(io.Discard, "json", "loud"); err != nil {
		fmt.Println(err)
	}
	// Output: log-level: unknown level "loud" (want debug, info, warn or error)
}

package sdnotify_test

import (
	"fmt"
	"os"

	"github.com/pipegate/pipegate/internal/sdnotify"
)

func ExampleNotify() {
	os.Unsetenv("NOTIFY_SOCKET") // not under systemd: nothing is sent
	sent, err := sdnotify.Notify(sdnotify.MainPID(os.Getpid()), sdnotify.Ready, sdnotify.Status("serving"))
	fmt.Println(sent, err)
	// Output: false <nil>
}

package upgrade

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperDialEnv makes the test binary a would-be new process that dials
// the socket named by the variable (TestPeerOtherUIDRefused).
const helperDialEnv = "PIPEGATE_UPGRADE_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperDialEnv); path != "" {
		os.Exit(helperDial(path))
	}
	goleak.VerifyTestMain(m)
}

// helperDial dials path and prints the outcome; a refusal is success.
func helperDial(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err == nil {
		c.Close()
		fmt.Println("dial succeeded")
		return 1
	}
	fmt.Println(err)
	return 0
}

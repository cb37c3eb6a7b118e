package process

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/upgrade"
)

// childEnv, set in the environment of a re-run of this test binary, makes
// it the new process of an upgrade that fails (newProcessFails).
const childEnv = "PIPEGATE_TEST_UPGRADE_CHILD"

// childReason is what that new process gives as its reason.
const childReason = "forward.yaml:4: forwards[0].max_conns: negative value -1"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(newProcessFails(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// newProcessFails is a new binary whose config is bad: it takes the
// listeners, says why it cannot serve, and exits 2 at once, as pipegate
// does.
func newProcessFails(args []string) int {
	i := slices.Index(args, "--upgrade-from")
	if i < 0 || i+1 >= len(args) {
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := upgrade.Dial(ctx, args[i+1])
	if err != nil {
		return 3
	}
	defer c.Close()
	if _, err := upgrade.RecvListeners(ctx, c); err != nil {
		return 3
	}
	if err := c.Failed(ctx, childReason); err != nil {
		return 3
	}
	return 2
}

package realserver

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// RunTests runs a package's tests, then the cleanups (stop the servers,
// remove their directory), then checks for leaked goroutines as
// goleak.VerifyTestMain does, and exits. Use it as the end of TestMain;
// goleak.VerifyTestMain itself would look for leaks before the servers'
// reader goroutines are gone.
func RunTests(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

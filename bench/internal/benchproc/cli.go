package benchproc

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// Flags are the flags the login benches share.
type Flags struct {
	Pipegate string // --pipegate: the binary under test
	Logins   int    // --logins: sequential logins per line per round
	Rounds   int    // --rounds: each runs every line once
	Sessions int    // --sessions, after RegisterSessions: idle sessions for the memory figure
}

// Register defines --pipegate, --logins (default logins) and --rounds
// (default 10) on fs.
func (f *Flags) Register(fs *flag.FlagSet, logins int) {
	fs.StringVar(&f.Pipegate, "pipegate", "", "pipegate binary (required)")
	fs.IntVar(&f.Logins, "logins", logins, "sequential logins per line per round")
	fs.IntVar(&f.Rounds, "rounds", 10, "rounds; each runs every line once, in a rotating order")
}

// RegisterSessions defines --sessions (default 400) on fs.
func (f *Flags) RegisterSessions(fs *flag.FlagSet) {
	fs.IntVar(&f.Sessions, "sessions", 400, "idle sessions for the memory figure: RSS growth from N to 2N sessions, per session (0: skip)")
}

// Check returns a UsageError when --pipegate is missing; script is the
// one that passes it.
func (f *Flags) Check(script string) error {
	if f.Pipegate == "" {
		return Usagef("--pipegate BIN is required (%s passes it)", script)
	}
	return nil
}

// UsageError is a mistake on the command line: Run exits with status 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

// Usagef formats a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Sprintf(format, args...)}
}

// Run runs a bench's body and returns its exit status, for os.Exit: 0
// when run returns nil; else it writes "name: error" to standard error
// and returns 2 for a UsageError, 1 for any other error.
func Run(name string, run func() error) int {
	err := run()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	if ue := (*UsageError)(nil); errors.As(err, &ue) {
		return 2
	}
	return 1
}

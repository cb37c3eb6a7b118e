package tests

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
)

// popmapRE is Perdition's example popmap.re, then lines that use what
// its posix_regex map does: submatches in the value, a user@ value, a
// comment after a value, a line a later one hides, and a line it reads
// but pipegate cannot follow.
const popmapRE = "######################################################################\n" +
	"# popmap.re\r\n" +
	"# Format: <regular expression>: <server>[:<port>]\n" +
	"\n" +
	"^[a-k]: oldhost\n" +
	"^[a-k]: localhost\n" +
	"^[^a-k]: localhost:110\n" +
	`^([^@]*)@([^.]*)\.(.*)$: $1_$2_$3@realimapserver` + "\n" +
	"  ^admin$:   root@mail0.example.com:1110   # the admin's own\n" +
	"^p%([a-z]+)$: o'p%$1@mail0.example.com\n" +
	"[0-9]: digits.example.com\n"

// TestPopmapREToRoutes: contrib/perdition/popmapre2routes.awk turns a
// popmap.re into match: rules that route each account as Perdition
// did: the last line first, $N filled from the account, user@ as the
// login; an unanchored line is refused on stderr, naming its line and
// why, and the rest is converted; a line a later one hides is dropped.
func TestPopmapREToRoutes(t *testing.T) {
	awks := []string{testenv.LookPath(t, "awk", "mawk")}
	for _, name := range []string{"mawk", "gawk", "original-awk"} { // each that is here
		if p, err := exec.LookPath(name); err == nil {
			awks = append(awks, p)
		}
	}
	for _, awk := range awks {
		t.Run(filepath.Base(awk), func(t *testing.T) { testPopmapRE(t, awk) })
	}
}

func testPopmapRE(t *testing.T, awk string) {
	cmd := exec.Command(awk, "-v", "scheme=imap", "-f", "../contrib/perdition/popmapre2routes.awk")
	cmd.Stdin = strings.NewReader(popmapRE)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v; want status 1 for the unanchored line", err)
	}
	const why = "popmapre2routes: line 11: not anchored with ^: Perdition puts the part of the name before the match in front of the server; write this rule by hand: [0-9]: digits.example.com\n" +
		"popmapre2routes: line 5: dropped: line 6 has the same regex, and Perdition uses the last\n"
	if got := stderr.String(); got != why {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, why)
	}
	src, err := file.Parse("routes.yaml", out)
	if err != nil {
		t.Fatalf("the converted routes do not load: %v\n%s", err, out)
	}
	if got := src.Rules(); got != 5 {
		t.Errorf("%d rules, want 5 (every line but the unanchored one)\n%s", got, out)
	}
	checkConverted(t, src, []convertedRoute{
		{"alice", "imap://localhost:143", ""},
		{"zoe", "imap://localhost:110", ""},
		{"user7", "imap://localhost:110", ""}, // not "digits": that line was refused
		{"alice@a.example.com", "imap://realimapserver:143", "alice_a_example.com"},
		{"zoe@b.example", "imap://realimapserver:143", "zoe_b_example"},
		{"admin", "imap://mail0.example.com:1110", "root"},
		{"admin@nodot", "imap://localhost:143", ""},
		{"p%q", "imap://mail0.example.com:143", "o'p%q"},
	})
	if _, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: ""}); !errors.Is(err, route.ErrNotFound) {
		t.Errorf("the empty name, which no line matches: %v, want not found", err)
	}
}

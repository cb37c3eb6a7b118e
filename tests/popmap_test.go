package tests

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
)

// TestPopmapToRoutes: contrib/perdition/popmap2routes.awk turns a
// Perdition popmap into a routes file that routes each account as the
// popmap did: the account's host and port, a domain key for the rest of
// its domain, the popmap's user@ as the backend login, and names with
// quotes or backslashes kept byte for byte; a line without KEY:HOST is
// an error naming it.
func TestPopmapToRoutes(t *testing.T) {
	awk, err := exec.LookPath("awk")
	if err != nil {
		t.Skip("no awk")
	}
	popmap := "# Perdition popmap\r\n" +
		"alice:mail1.example.com\r\n" +
		"\n" +
		"bob:bob2@mail2.example.com:1143\n" +
		`o"d\d'y:mail1.example.com` + "\n" +
		"@example.org:mail3.example.com\n"
	cmd := exec.Command(awk, "-v", "scheme=imaps", "-f", "../contrib/perdition/popmap2routes.awk")
	cmd.Stdin = strings.NewReader(popmap)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("awk: %v", err)
	}
	src, err := file.Parse("routes.yaml", out)
	if err != nil {
		t.Fatalf("the converted routes do not load: %v\n%s", err, out)
	}
	checkConverted(t, src, []convertedRoute{
		{"alice", "imaps://mail1.example.com:993", ""},
		{"bob", "imaps://mail2.example.com:1143", "bob2"},
		{`o"d\d'y`, "imaps://mail1.example.com:993", ""},
		{"carol@example.org", "imaps://mail3.example.com:993", ""},
	})
	if _, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "dave"}); err == nil {
		t.Error("an account the popmap does not have was routed")
	}

	cmd = exec.Command(awk, "-f", "../contrib/perdition/popmap2routes.awk")
	cmd.Stdin = strings.NewReader("alice:mail1.example.com\nbroken line\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "line 2") {
		t.Errorf("a line without KEY:HOST: err %v, stderr %q; want a failure naming line 2", err, stderr.String())
	}
}

// convertedRoute is where a converted popmap is to route an account: its
// one backend (as route.Backend.String) and login.
type convertedRoute struct{ account, backend, login string }

// checkConverted looks each account up in src, the routes a converter
// wrote, and checks its route.
func checkConverted(t *testing.T, src route.Router, want []convertedRoute) {
	t.Helper()
	for _, tt := range want {
		rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: tt.account})
		if err != nil {
			t.Errorf("%s: %v", tt.account, err)
			continue
		}
		if len(rt.Backends) != 1 || rt.Backends[0].String() != tt.backend || rt.Login != tt.login {
			t.Errorf("%s: route %v login %q, want %s login %q", tt.account, rt.Backends, rt.Login, tt.backend, tt.login)
		}
	}
}

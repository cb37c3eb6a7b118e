package config

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// TestOpenRoutesFileFirst: routes_file answers before route_sources, both
// reload, and backend_tls.server_name reaches the backends that name no
// server.
func TestOpenRoutesFileFirst(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", "routes:\n  - account: bob@a.test\n    backends: [imaps://127.0.0.1:14301, \"imaps://127.0.0.1:14302?server_name=named.test\"]\n")
	writeFile(t, dir, "more.yaml", "default: imap://127.0.0.1:14399\n")
	r, err := Open(context.Background(), Spec{
		Dir: dir, RoutesFile: "routes.yaml",
		Sources:    []SourceConfig{{Type: "file", Path: "more.yaml"}},
		ServerName: "imap.internal",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rt, err := r.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "bob@a.test"})
	if err != nil || len(rt.Backends) != 2 {
		t.Fatalf("bob: %+v %v", rt, err)
	}
	if rt.Backends[0].ServerName != "imap.internal" || rt.Backends[1].ServerName != "named.test" {
		t.Fatalf("server names %q %q", rt.Backends[0].ServerName, rt.Backends[1].ServerName)
	}
	if got, err := lookup(r, "carol@a.test"); err != nil || got != "imap://127.0.0.1:14399?server_name=imap.internal" {
		t.Fatalf("carol (route_sources): %s %v", got, err)
	}
	if r.Rules() != 1 {
		t.Fatalf("rules %d", r.Rules())
	}

	writeFile(t, dir, "routes.yaml", "routes: [\n")
	writeFile(t, dir, "more.yaml", "default: imap://127.0.0.1:14400\n")
	err = r.Reload()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key() != "routes_file" {
		t.Fatalf("reload of a broken routes_file: %v", err)
	}
	if got, _ := lookup(r, "bob@a.test"); got != "imaps://127.0.0.1:14301?server_name=imap.internal" {
		t.Fatalf("routes_file after a failed reload: %s", got)
	}
	if got, _ := lookup(r, "carol@a.test"); got != "imap://127.0.0.1:14400?server_name=imap.internal" {
		t.Fatalf("route_sources after reload: %s", got)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		spec Spec
		key  string // FieldError.Key
		want string
	}{
		{"nothing", Spec{Dir: dir}, "routes_file", "missing"},
		{"routes_file gone", Spec{Dir: dir, RoutesFile: "gone.yaml"}, "routes_file", "gone.yaml"},
		{"source gone", Spec{Dir: dir, Sources: []SourceConfig{{Type: "file", Path: "gone.yaml", Line: 7}}}, "route_sources[0].path", "gone.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.spec)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key() != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a FieldError at %s with %q", err, tc.key, tc.want)
			}
		})
	}
}

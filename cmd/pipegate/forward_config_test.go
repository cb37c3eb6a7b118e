package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/forward"
)

// Every flag of `pipegate forward` has a key in the config file
// (forward.FlagKeys), that key exists, and docs/forward.md's table says so.
func TestForwardFlagsHaveKeys(t *testing.T) {
	var help strings.Builder
	if _, err := fwdParseArgs([]string{"-h"}, &help); err == nil {
		t.Fatal("-h: no error")
	}
	keyOf := map[string]string{}
	for _, fk := range forward.FlagKeys() {
		keyOf[fk.Flag] = fk.Key
	}
	flags := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 30 {
		t.Fatalf("found only %d flags in the usage:\n%s", len(flags), help.String())
	}
	docs, err := os.ReadFile("../../docs/forward.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range flags {
		name := m[1]
		if name == "config" || slices.Contains(upgradeFlags, name) { // process flags, not config keys (docs/upgrade.md)
			continue
		}
		key, ok := keyOf[name]
		if !ok {
			t.Errorf("flag --%s has no config key in forward.FlagKeys", name)
			continue
		}
		if !fwdHasKey(key) {
			t.Errorf("flag --%s: key %s is not in forward.Spec or forward.File", name, key)
		}
		if row := fmt.Sprintf("| `--%s` | `%s` |", name, key); !strings.Contains(string(docs), row) {
			t.Errorf("docs/forward.md lacks the row %s", row)
		}
	}
	if n := len(flags) - 1 - len(upgradeFlags); n != len(forward.FlagKeys()) {
		t.Errorf("%d flags but %d entries in forward.FlagKeys", n, len(forward.FlagKeys()))
	}
}

// fwdHasKey reports whether key ("to_tls.ca") is a yaml path of
// forward.Spec (a forward) or of forward.File (the top level).
func fwdHasKey(key string) bool {
	for _, typ := range []reflect.Type{reflect.TypeFor[forward.Spec](), reflect.TypeFor[forward.File]()} {
		t := typ
		found := true
		for part := range strings.SplitSeq(key, ".") {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			next := reflect.Type(nil)
			for f := range t.Fields() {
				if strings.Split(f.Tag.Get("yaml"), ",")[0] == part {
					next = f.Type
				}
			}
			if next == nil {
				found = false
				break
			}
			t = next
		}
		if found {
			return true
		}
	}
	return false
}

// The --backoff help says what the code does: a failing upstream is tried
// after the others, never skipped (see forward's pool.candidates).
func TestForwardBackoffHelp(t *testing.T) {
	var help strings.Builder
	fwdParseArgs([]string{"-h"}, &help)
	line := regexp.MustCompile(`(?m)^  -backoff.*\n.*`).FindString(help.String())
	if line == "" {
		t.Fatalf("no -backoff in the usage:\n%s", help.String())
	}
	if strings.Contains(line, "skip") || !strings.Contains(line, "after the others") {
		t.Errorf("--backoff help does not say the upstream is tried last: %q", line)
	}
}

// The ways back (go_accept, tls_on_goroutines) come from the flags (the
// file's are forward's TestLoadFileWaysBack); --tls-on-goroutines may be
// given next to --config.
func TestForwardConfigWaysBack(t *testing.T) {
	for _, tc := range []struct {
		args               []string
		goAccept, tlsOnGos bool
	}{
		{[]string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1"}, false, false},
		{[]string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--go-accept", "--tls-on-goroutines"}, true, true},
	} {
		o, err := fwdParseArgs(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		l, err := fwdLoad(o, forward.TLSCache{})
		if err != nil {
			t.Fatal(err)
		}
		if c := l.Forwards[0]; c.GoAccept != tc.goAccept || c.TLSOnGoroutines != tc.tlsOnGos {
			t.Errorf("%v: GoAccept %v, TLSOnGoroutines %v", tc.args, c.GoAccept, c.TLSOnGoroutines)
		}
	}
	plain := fwdWriteConfig(t, "forwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n")
	o, err := fwdParseArgs([]string{"--config", plain, "--tls-on-goroutines"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := fwdLoad(o, forward.TLSCache{}); err != nil || !l.Forwards[0].TLSOnGoroutines {
		t.Errorf("--tls-on-goroutines next to --config: %v", err)
	}
}

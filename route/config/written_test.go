package config

import (
	"context"
	"strings"
	"testing"
)

// TestErrorNamesWrittenField: a bad config's error names the
// field the file holds, at its line.
func TestErrorNamesWrittenField(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		// url: (not urls:) is wrong, on line 5
		{"route_sources:\n  - type: ldap\n    base_dn: dc=x\n    host_attr: h\n    url: gopher://x\n",
			"route_sources[0] (line 5).url: "},
		// urls[0] is wrong (line 6), url: is fine
		{"route_sources:\n  - type: ldap\n    base_dn: dc=x\n    host_attr: h\n    url: ldap://127.0.0.1\n    urls: [gopher://x]\n",
			"route_sources[0] (line 6).urls[0]"},
		// cache: on a file source is the problem, not timeout:
		{"route_sources:\n  - type: file\n    path: r.yaml\n    cache: false\n",
			"route_sources[0] (line 4).cache: "},
	} {
		dir := t.TempDir()
		writeFile(t, dir, "r.yaml", "default: imap://127.0.0.1:1\n")
		c, err := decode(t, tt.yaml)
		if err != nil {
			t.Fatal(err)
		}
		_, _, closeAll, err := Build(context.Background(), dir, c.RouteSources, CacheConfig{})
		if err == nil {
			closeAll()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q:\n err = %v\nwant it to contain %q", tt.yaml, err, tt.want)
		}
	}
}

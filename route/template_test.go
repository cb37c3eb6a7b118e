package route

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	up := func(s string) string { return "<" + strings.ToUpper(s) + ">" }
	tests := []struct {
		tmpl, account string
		escape        func(string) string
		want          string
	}{
		{"route:%u", "alice@a.test", nil, "route:alice@a.test"},
		{"%n at %d", "alice@a.test", nil, "alice at a.test"},
		{"%n|%d", "noat", nil, "noat|"},
		{"%n|%d", "a@b@c.test", nil, "a@b|c.test"},
		{"100%% %u", "x@y", nil, "100% x@y"},
		{"(mail=%u)", "a*b@c", up, "(mail=<A*B@C>)"},
		{"plain", "x@y", nil, "plain"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.tmpl, tt.account, tt.escape)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q, %q) = %q, %v; want %q", tt.tmpl, tt.account, got, err, tt.want)
		}
	}
	for _, bad := range []string{"%x", "abc%", "%U"} {
		if _, err := Expand(bad, "a@b", nil); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Expand(%q): err = %v, want one naming the template", bad, err)
		}
	}
}

package logconf

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		want          string // in the error; "" for none
	}{
		{"", "", ""},
		{"text", "debug", ""},
		{"JSON", "Warning", ""},
		{"json", "error", ""},
		{"xml", "", `log-format: unknown format "xml" (want text or json)`},
		{"", "loud", `log-level: unknown level "loud" (want debug, info, warn or error)`},
	} {
		var buf bytes.Buffer
		log, err := New(&buf, tc.format, tc.level)
		if tc.want != "" {
			if err == nil || err.Error() != tc.want {
				t.Errorf("New(%q, %q): error %v, want %s", tc.format, tc.level, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q, %q): %v", tc.format, tc.level, err)
			continue
		}
		if ValidFormat(tc.format) != true || ValidLevel(tc.level) != true {
			t.Errorf("Valid*(%q, %q) disagree with New", tc.format, tc.level)
		}
		log.Error("hello", "k", "v")
		if !strings.Contains(buf.String(), "hello") {
			t.Errorf("New(%q, %q): nothing logged: %q", tc.format, tc.level, buf.String())
		}
	}
	if ValidFormat("xml") || ValidLevel("loud") {
		t.Error("Valid* take bad values")
	}
}

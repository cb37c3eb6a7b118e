package tests

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestCheckConfig runs `pipegate check-config` on the issue's file and on
// broken ones: exit 0, else exit 2 with a message naming file and field.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, "routes:\n  - account: alice@a.test\n    backend: imap://127.0.0.1:14301\n  - domain: b.test\n    backend: imaps://127.0.0.1:19932\ndefault: imap+starttls://127.0.0.1:14301\n")
	good := "listen:\n  - addr: 127.0.0.1:1143\n  - addr: 127.0.0.1:1993\n    tls: true\ntls:\n  cert: " + cert + "\n  key: " + key +
		"\nbackend_tls:\n  ca: " + ca.CertFile(t) + "\nroutes_file: " + routes + "\n"
	cases := []struct {
		name, config string
		want         []string // in the output; none: exit 0
	}{
		{"issue file", good, nil},
		{"unknown field", good + "max_conections: 10\n", []string{":11: max_conections: unknown field"}},
		{"bad listener", strings.Replace(good, "127.0.0.1:1993", "127.0.0.1:99999", 1), []string{":3: listen[1].addr:", "65535"}},
		{"missing key file", strings.Replace(good, key, key+".gone", 1), []string{":7: tls.key: open ", ".gone"}},
		{"bad routes", strings.Replace(good, routes, filepath.Join(dir, "none.yaml"), 1), []string{"routes_file:", "none.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "imap.yaml")
			writeFile(t, path, tc.config)
			out, err := exec.Command(pipegateBin, "check-config", path).CombinedOutput()
			var ee *exec.ExitError
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("good file: %v\n%s", err, out)
			case tc.want == nil:
				return
			case !errors.As(err, &ee) || ee.ExitCode() != 2:
				t.Fatalf("bad file: exit %v, want 2\n%s", err, out)
			}
			if !strings.Contains(string(out), path) {
				t.Errorf("message does not name the file %s:\n%s", path, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("message lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

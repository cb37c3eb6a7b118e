package process

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestChildArgs(t *testing.T) {
	for _, tc := range []struct {
		args, want []string
	}{
		{[]string{"--config", "f.yaml"}, []string{"forward", "--upgrade-from", "S", "--config", "f.yaml"}},
		{[]string{"--upgrade-from", "old", "--config", "f.yaml"}, []string{"forward", "--upgrade-from", "S", "--config", "f.yaml"}},
		{[]string{"-upgrade-from=old", "--listen", "a:1"}, []string{"forward", "--upgrade-from", "S", "--listen", "a:1"}},
		{[]string{"--listen", "a:1", "--"}, []string{"forward", "--upgrade-from", "S", "--listen", "a:1", "--"}},
	} {
		if got := childArgs("forward", tc.args, "S"); !slices.Equal(got, tc.want) {
			t.Errorf("childArgs(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestUpgradeOptionsCheck(t *testing.T) {
	for _, o := range []Options{
		{Dir: "/run/x", Timeout: 0},
		{Dir: "", Timeout: time.Second},
		{Dir: "/run/x", Timeout: time.Second, PIDFile: "relative.pid"},
		{Dir: "/run/x", Timeout: time.Second, PIDFile: filepath.Join(t.TempDir(), "missing", "x.pid")},
		{Dir: "/run/x", Timeout: time.Second, PIDFile: "/etc/hostname/x.pid"},
	} {
		if err := o.Check(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := (&Options{Dir: "/run/x", Timeout: time.Second, PIDFile: "/run/x.pid"}).Check(); err != nil {
		t.Error(err)
	}
}

package configerr

import (
	"errors"
	"io/fs"
	"testing"
)

func TestError(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Field: "listen[1].addr", Err: errors.New("missing port")}, "a.yaml:3: listen[1].addr: missing port"},
		{Error{File: "a.yaml", Err: errors.New("empty")}, "a.yaml: empty"},
		{Error{File: "a.yaml", Field: "tls", Err: errors.New("bad")}, "a.yaml: tls: bad"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
	e := &Error{File: "x", Err: fs.ErrNotExist}
	if !errors.Is(e, fs.ErrNotExist) {
		t.Error("Unwrap lost the cause")
	}
}

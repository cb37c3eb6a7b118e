package upgrade

import (
	"os"
	"strings"
	"testing"
)

// TestRecvEach: the messages of the kind reach each in order with their
// files, the end message stops it; a message of another kind is an error
// and its files are closed.
func TestRecvEach(t *testing.T) {
	oldc, newc := connPair(t)
	ctx := testCtx(t)
	before := openFDs(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		if err := oldc.Send(ctx, "item", []byte(m), w); err != nil {
			t.Fatal(err)
		}
	}
	if err := oldc.Send(ctx, "end", nil, w); err != nil {
		t.Fatal(err)
	}
	if err := oldc.Send(ctx, "stray", nil, w); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	var got []string
	err = newc.RecvEach(ctx, "item", "end", func(meta []byte, files []*os.File) {
		got = append(got, string(meta))
		if len(files) != 1 {
			t.Errorf("%q came with %d files, want 1", meta, len(files))
		}
		CloseFiles(files)
	})
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("RecvEach: %q, %v; want a,b", got, err)
	}
	err = newc.RecvEach(ctx, "item", "end", func([]byte, []*os.File) { t.Error("each called for a stray message") })
	if err == nil || !strings.Contains(err.Error(), `unexpected message "stray"`) {
		t.Fatalf("stray message: %v", err)
	}
	if n := openFDs(t); n != before {
		t.Errorf("%d fds open, %d before: the end's or the stray message's file was not closed", n, before)
	}
}

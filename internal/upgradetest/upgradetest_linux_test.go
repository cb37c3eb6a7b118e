package upgradetest

import (
	"context"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/upgrade"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSendSockets: what SendSockets sends on one end of Channel arrives
// at the other with its sockets, each connected to one of the ends kept,
// and nothing stays open afterwards.
func TestSendSockets(t *testing.T) {
	before := OpenFDs(t)
	t.Run("send", func(t *testing.T) {
		oldc, newc := Channel(t)
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		kept := SendSockets(t, ctx, oldc, "session", DetachedState(t), 2)
		kind, meta, files, err := newc.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer upgrade.CloseFiles(files)
		if kind != "session" || len(meta) == 0 || len(files) != 2 || len(kept) != 2 {
			t.Fatalf("got kind %q, %d bytes, %d files; kept %d", kind, len(meta), len(files), len(kept))
		}
		for i, f := range files {
			if _, err := f.Write([]byte{byte('a' + i)}); err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := kept[i].Read(b[:]); err != nil || b[0] != byte('a'+i) {
				t.Fatalf("socket %d: read %q, %v", i, b[:], err)
			}
		}
	})
	if after := OpenFDs(t); after != before {
		t.Fatalf("%d descriptors before, %d after", before, after)
	}
}

// TestEndLog: lines with bytes_to_client count as ends, others do not,
// Watch sees them all, and WaitEnds returns once the count is reached by
// another goroutine.
func TestEndLog(t *testing.T) {
	var seen []string
	l := &EndLog{Watch: func(r slog.Record) { seen = append(seen, r.Message) }}
	log := slog.New(l)
	log.Info("upgrade: pairs taken over", "adopted", 1)
	log.Info("imap session", "bytes_to_backend", 1, "bytes_to_client", 2)
	if l.Ends() != 1 || len(seen) != 2 {
		t.Fatalf("%d ends, watched %q", l.Ends(), seen)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		slog.New(l).Info("pair", "bytes_to_client", 0)
	}()
	l.WaitEnds(t, 2)
	<-done
}

package evloop

import (
	"errors"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// Errors of Detach for pairs that cannot leave now; the pair goes on.
var (
	ErrEnded      = errors.New("evloop: pair has ended")
	ErrStopping   = errors.New("evloop: pair is being stopped")
	ErrConnecting = errors.New("evloop: pair is connecting its upstream")
)

// Snapshot is a pair taken off its loop by Detach: what another Group needs
// to carry it on. Durations are measured at the detach.
type Snapshot struct {
	A, B   int // the sockets, now the caller's (non-blocking, close-on-exec)
	Start  time.Time
	Opts   core.Options
	Age    time.Duration // since the pair was registered (MaxLifetime)
	Idle   time.Duration // since the last byte moved (IdleTimeout)
	Linger time.Duration // since the first half-close; < 0: none
	// FirstEnd is the side whose stream ended first, if any.
	FirstEnd core.Side
	Dirs     [2]DirSnapshot // A→B, B→A
	// TLS holds each side's record layer (A, B), nil for a plain side.
	// Records read from a TLS side and not yet opened are in its Unread.
	TLS [2]*tlsrec.State
}

// DirSnapshot is one direction of a Snapshot.
type DirSnapshot struct {
	Bytes int64 // written to dst so far
	// Pending is what was read from src and not yet written to dst, as it
	// is to be written: sealed records for a TLS dst.
	Pending []byte
	// PendingPlain is the plaintext behind Pending for a TLS dst, counted
	// in Bytes once Pending is written.
	PendingPlain int
	EOF          bool // src ended its stream
	Done         bool // and dst was shut for writing
	CloseNotify  bool // close_notify is sealed for a TLS dst (in Pending, or written)
}

package upgrade

import (
	"errors"
	"fmt"
)

// Bounds of one message.
const (
	MaxKind  = 64      // bytes in a message's kind
	MaxMeta  = 1 << 20 // bytes of metadata
	MaxFiles = 64      // file descriptors
)

// ErrUnsupported is returned by Listen and Dial on systems other than Linux.
var ErrUnsupported = errors.New("upgrade: hand-over is only supported on Linux")

// PeerError says that the process at the other end of the upgrade socket
// runs as another user than this one and was refused.
type PeerError struct {
	PID     int32  // the peer's process id
	UID     uint32 // the peer's user id
	WantUID uint32 // ours
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("upgrade: refused peer pid %d with uid %d: only uid %d may take part in the hand-over",
		e.PID, e.UID, e.WantUID)
}

// FailedError is returned by WaitReady when the new process reported that
// it could not start serving (Conn.Failed), or went away before it was
// ready. The old process keeps serving.
type FailedError struct {
	Reason string
}

func (e *FailedError) Error() string { return "upgrade: new process failed: " + e.Reason }

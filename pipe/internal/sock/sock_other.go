//go:build !linux

package sock

import (
	"errors"
	"syscall"
)

// Supported reports whether this build can wait, peek and splice.
const Supported = false

// MaxSplice is how many bytes one SpliceIn asks for.
const MaxSplice = 1 << 20

// Pipe is a kernel pipe (unused on this system).
type Pipe struct{ buffered int }

// WaitReadable is not supported on this system.
func WaitReadable(syscall.RawConn) error { return errors.ErrUnsupported }

// Buffer is a user-space copy buffer.
type Buffer struct{ B []byte }

// NewBuffer returns a Buffer of size bytes.
func NewBuffer(size int) *Buffer { return &Buffer{B: make([]byte, size)} }

// TryRead is not supported on this system.
func (*Buffer) TryRead(uintptr) bool { return false }

// LastRead is not supported on this system.
func (*Buffer) LastRead() (int, error) { return 0, errors.ErrUnsupported }

// Queued is not supported on this system.
func Queued(syscall.RawConn) (int, error) { return 0, errors.ErrUnsupported }

// TrySpliceIn is not supported on this system.
func (*Pipe) TrySpliceIn(uintptr, int) bool { return false }

// LastIn is not supported on this system.
func (*Pipe) LastIn() (int, error) { return 0, errors.ErrUnsupported }

// SpliceOut is not supported on this system.
func (*Pipe) SpliceOut(syscall.RawConn) (int64, error) { return 0, errors.ErrUnsupported }

// GetPipe is not supported on this system.
func GetPipe() (*Pipe, error) { return nil, errors.ErrUnsupported }

// PutPipe does nothing on this system.
func PutPipe(*Pipe) {}

// DrainPipes does nothing on this system.
func DrainPipes() {}

// Buffered returns the bytes held in the pipe.
func (p *Pipe) Buffered() int { return p.buffered }

//go:build !linux

package evloop

import (
	"context"
	"net"
	"net/netip"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// Supported is false: no event loops on this system.
const Supported = false

// Endpoint is a socket owned by a Group; unavailable on this system.
type Endpoint struct{}

// FromConn returns ErrUnsupported on this system.
func FromConn(net.Conn) (Endpoint, error) { return Endpoint{}, ErrUnsupported }

// Qualifies reports false on this system.
func Qualifies(net.Conn) bool { return false }

// TakePair returns ErrUnsupported on this system.
func TakePair(a, b net.Conn) (Endpoint, Endpoint, error) {
	return Endpoint{}, Endpoint{}, ErrUnsupported
}

// TakeConns returns ErrUnsupported on this system.
func TakeConns(a, b Conn) (Endpoint, Endpoint, error) {
	return Endpoint{}, Endpoint{}, ErrUnsupported
}

// Valid reports false on this system.
func (Endpoint) Valid() bool { return false }

// Close does nothing on this system.
func (Endpoint) Close() error { return nil }

// Group is unavailable on this system: use the goroutine flavour.
type Group struct{}

// New returns ErrUnsupported on this system.
func New(Config) (*Group, error) { return nil, ErrUnsupported }

// Add returns ErrUnsupported on this system.
func (*Group) Add(a, b Endpoint, opts core.Options, done func(core.Result)) error {
	return ErrUnsupported
}

// AddWithPrefix returns ErrUnsupported on this system.
func (*Group) AddWithPrefix(a, b Endpoint, fromA, fromB []byte, opts core.Options, done func(core.Result)) (Pair, error) {
	return Pair{}, ErrUnsupported
}

// Pair refers to no pair on this system.
type Pair struct{}

// Stop does nothing on this system.
func (Pair) Stop([]byte) {}

// Active returns 0 on this system.
func (*Group) Active() int { return 0 }

// Running returns 0 on this system.
func (*Group) Running() int { return 0 }

// Bytes returns 0, 0 on this system.
func (*Group) Bytes() (aToB, bToA int64) { return 0, 0 }

// Shutdown returns nil on this system.
func (*Group) Shutdown(context.Context) error { return nil }

// Close returns nil on this system.
func (*Group) Close() error { return nil }

// Listener is unavailable on this system.
type Listener struct{}

// Listen returns ErrUnsupported on this system.
func (*Group) Listen(net.Listener, Acceptor) (*Listener, error) { return nil, ErrUnsupported }

// Close does nothing on this system.
func (*Listener) Close() error { return nil }

// LocalAddr returns ErrUnsupported on this system.
func LocalAddr(int) (netip.AddrPort, error) { return netip.AddrPort{}, ErrUnsupported }

// ConnFromFD returns ErrUnsupported on this system.
func ConnFromFD(int) (net.Conn, error) { return nil, ErrUnsupported }

// CloseFD does nothing on this system.
func CloseFD(int) error { return ErrUnsupported }

// Detach refuses every pair on this system.
func (*Group) Detach(pairs []Pair) ([]*Snapshot, []error) {
	errs := make([]error, len(pairs))
	for i := range errs {
		errs[i] = ErrUnsupported
	}
	return make([]*Snapshot, len(pairs)), errs
}

// AddSnapshot returns ErrUnsupported on this system.
func (*Group) AddSnapshot(a, b Endpoint, s *Snapshot, done func(core.Result)) (Pair, error) {
	return Pair{}, ErrUnsupported
}

// EndpointFromFD returns ErrUnsupported on this system.
func EndpointFromFD(int, *tlsrec.State) (Endpoint, error) { return Endpoint{}, ErrUnsupported }

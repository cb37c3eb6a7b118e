//go:build !linux

package upgrade

import (
	"context"
	"os"
)

// Server is the old process's end of the hand-over (Linux only).
type Server struct{}

// Listen returns ErrUnsupported outside Linux.
func Listen(path string) (*Server, error) { return nil, ErrUnsupported }

// Path is the socket's path.
func (s *Server) Path() string { return "" }

// Accept returns ErrUnsupported outside Linux.
func (s *Server) Accept(ctx context.Context) (*Conn, error) { return nil, ErrUnsupported }

// Close does nothing outside Linux.
func (s *Server) Close() error { return nil }

// Conn is one end of the hand-over channel (Linux only).
type Conn struct{ acks bool }

// Dial returns ErrUnsupported outside Linux.
func Dial(ctx context.Context, path string) (*Conn, error) { return nil, ErrUnsupported }

// Send returns ErrUnsupported outside Linux.
func (c *Conn) Send(ctx context.Context, kind string, meta []byte, files ...*os.File) error {
	return ErrUnsupported
}

// Recv returns ErrUnsupported outside Linux.
func (c *Conn) Recv(ctx context.Context) (kind string, meta []byte, files []*os.File, err error) {
	return "", nil, nil, ErrUnsupported
}

// Close does nothing outside Linux.
func (c *Conn) Close() error { return nil }

// Outbox is the old process's side of a confirmed hand-over (Linux only).
type Outbox struct{}

// Held is what an Outbox keeps of a message until the peer took it.
type Held struct {
	Value any
	Files []*os.File
}

// NewOutbox returns an Outbox whose Sends fail outside Linux.
func NewOutbox(c *Conn, release func(v any)) *Outbox { return &Outbox{} }

// Send returns ErrUnsupported outside Linux.
func (o *Outbox) Send(ctx context.Context, kind string, meta []byte, v any, files ...*os.File) error {
	return ErrUnsupported
}

// Finish returns ErrUnsupported outside Linux.
func (o *Outbox) Finish(ctx context.Context, end string, meta []byte) ([]Held, error) {
	return nil, ErrUnsupported
}

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
type Conn struct{}

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

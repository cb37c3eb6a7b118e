package imap

import (
	"context"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
)

// Adopt carries on a session another process handed over (a binary
// upgrade; gateway.Server.Adopt), as this protocol's.
func (s *Server) Adopt(ctx context.Context, d *pipe.Detached, st gateway.SessionState) error {
	s.setProtocol()
	return s.Server.Adopt(ctx, d, st)
}

package imap

import (
	"context"
	"fmt"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// Probe checks an IMAP backend for a pool's health checks
// (gateway.Server.Probe): the greeting, STARTTLS when b asks for it, the
// LOGIN of a test account when user is set, and LOGOUT.
func (s *Server) Probe(ctx context.Context, b route.Backend, user, password string) error {
	s.setProtocol()
	return s.Server.Probe(ctx, b, user, password)
}

// Probe is gateway.Prober: the greeting, STARTTLS when the route asks,
// LOGIN of the test account when user is set, LOGOUT.
func (protocol) Probe(b *gateway.Backend, user, password string) error {
	bc := &backendConn{Backend: b}
	if err := bc.greet(); err != nil {
		return err
	}
	var err error
	if user != "" {
		if bc.caps == nil {
			if bc.caps, err = bc.readCapability(bc.writeCommand("CAPABILITY"), nil); err != nil {
				return err
			}
		}
		tag := bc.nextTag()
		w := bc.writer()
		w.Atom(tag).SP().Atom("LOGIN").SP().String(user).SP().String(password).CRLF()
		if err := w.Err(); err != nil {
			return fmt.Errorf("LOGIN: %w", err)
		}
		if err := b.Writer().Flush(); err != nil {
			return fmt.Errorf("LOGIN: %w", err)
		}
		resp, err := bc.readTagged(tag)
		if err != nil {
			return fmt.Errorf("LOGIN: %w", err)
		}
		if resp.Type != "OK" {
			return fmt.Errorf("LOGIN of the probe account refused: %s %s", resp.Type, wire.SafeText(resp.Text))
		}
	}
	// A polite end; the answer does not matter.
	_ = bc.send(bc.nextTag() + " LOGOUT\r\n")
	return nil
}

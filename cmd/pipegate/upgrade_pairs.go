package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/maild"
	"github.com/pipegate/pipegate/upgrade"
)

// The seam for moving established pairs in a binary upgrade. The upgrade
// hands the listening sockets over first; once the new process has
// reported that it serves (upgrade.Conn.WaitReady), the old process calls
// pairHandover.HandOver on the same channel (upgradeAttempt.run), and the
// new one, right after its Ready, calls pairAdopter.Adopt
// (upgrader.serving). HandOver is also where the old process stops
// accepting without aborting what it accepted: the new process accepts on
// the same sockets by then. Pairs HandOver leaves behind (in their
// pre-login dialogue, in the middle of a TLS record, ...) drain in the old
// process as on SIGTERM. Today no pair moves: every established pair
// drains in the old process.

// pairHandover is the old process's side: it stops accepting, lets the
// connections accepted be set up, sends the pairs that can move over c
// (pipe.Engine.DetachAll, then Conn.Send with their sockets and state) and
// returns once the new process has them, or an error (the pairs not sent
// stay here and drain). It runs after WaitReady succeeded: an error no
// longer rolls the upgrade back.
type pairHandover interface {
	HandOver(ctx context.Context, c *upgrade.Conn) error
}

// pairAdopter is the new process's side: it receives what HandOver sends
// and gives each pair to the daemon's engine (pipe.Engine.Adopt), until
// the old side says it is done or closes c.
type pairAdopter interface {
	Adopt(ctx context.Context, c *upgrade.Conn) error
}

// noPairs moves no pair: they all drain in the old process.
type noPairs struct{}

func (noPairs) HandOver(context.Context, *upgrade.Conn) error { return nil }
func (noPairs) Adopt(context.Context, *upgrade.Conn) error    { return nil }

// fwdHandover is `pipegate forward`'s side of the seam. The old process
// stops accepting and lets the connections it accepted be set up rather
// than aborted, within setupTimeout; its pairs then drain here. To come:
// the pairs moved (Engine.DetachAll and Send here, Adopt on the new side).
type fwdHandover struct {
	noPairs
	d            *forward.Daemon
	setupTimeout time.Duration
}

func (h fwdHandover) HandOver(ctx context.Context, c *upgrade.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, h.setupTimeout)
	defer cancel()
	if err := h.d.StopAccepting(ctx); err != nil {
		return fmt.Errorf("connections still being set up when the drain began: %w", err)
	}
	return nil
}

// mailPairs is the mail daemon's side of the seam: its piped sessions
// move with their state (maild.Daemon.HandOver, TakeOver); pre-login
// sessions finish in the old process.
type mailPairs struct {
	d       *maild.Daemon
	log     *slog.Logger
	command string
}

func (m mailPairs) HandOver(ctx context.Context, c *upgrade.Conn) error {
	sent, stayed, err := m.d.HandOver(ctx, c)
	m.log.Info(m.command+": upgrade: sessions handed over", "sent", sent, "stayed", stayed, "err", err)
	return err
}

func (m mailPairs) Adopt(ctx context.Context, c *upgrade.Conn) error {
	n, err := m.d.TakeOver(ctx, c)
	m.log.Info(m.command+": upgrade: sessions taken over", "adopted", n, "err", err)
	return err
}

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/maild"
	"github.com/pipegate/pipegate/upgrade"
)

// fwdHandover is `pipegate forward`'s side of the seam (process.Pairs):
// its established pairs move to the new process (forward.Daemon's
// HandOverConn and AdoptConn), each step within setupTimeout.
type fwdHandover struct {
	d            *forward.Daemon
	setupTimeout time.Duration
}

func (h fwdHandover) HandOver(ctx context.Context, c *upgrade.Conn) error {
	return h.d.HandOverConn(ctx, c, h.setupTimeout)
}

func (h fwdHandover) Adopt(ctx context.Context, c *upgrade.Conn) error {
	return h.d.AdoptConn(ctx, c, h.setupTimeout)
}

// mailPairs is the mail daemon's side of the seam (process.Pairs): its piped sessions
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

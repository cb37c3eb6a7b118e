package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/maild"
	"github.com/pipegate/pipegate/pipe"
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
// pre-login dialogue, on goroutines with crypto/tls, ...) drain in the old
// process as on SIGTERM.

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
// than aborted, within setupTimeout; then its established pairs move to
// the new process (forward.Daemon.HandOver): one "forward-pair" message
// each, with its two sockets and a fwdPairMsg, then a "forward-pairs"
// message with the count. Pairs that cannot move (TLS on goroutines,
// half-closed on goroutines, still connecting) drain in the old process.
// The new process gives each pair to the forward of the same listen
// address (forward.Daemon.Adopt); one whose forward is no longer in the
// config is closed and logged.
type fwdHandover struct {
	d            *forward.Daemon
	setupTimeout time.Duration // also bounds the sending and receiving of the pairs
}

// The kinds of upgrade messages that carry a forward's pairs.
const (
	kindFwdPair  = "forward-pair"  // meta: fwdPairMsg; files: the client and upstream sockets
	kindFwdPairs = "forward-pairs" // the end of them: meta is the count sent
)

// fwdPairMsg is a kindFwdPair's meta.
type fwdPairMsg struct {
	Pair  forward.PairState `json:"pair"`
	State []byte            `json:"state"` // pipe.Detached.State: may hold TLS secrets, wiped once sent
}

func (h fwdHandover) HandOver(ctx context.Context, c *upgrade.Conn) error {
	sctx, cancel := context.WithTimeout(ctx, h.setupTimeout)
	serr := h.d.StopAccepting(sctx)
	cancel()
	if serr != nil {
		serr = fmt.Errorf("connections still being set up when the hand-over began (they drain here): %w", serr)
	}
	ctx, cancel = context.WithTimeout(ctx, h.setupTimeout)
	defer cancel()
	sent, _, err := h.d.HandOver(ctx, func(p *pipe.Detached, st forward.PairState) error {
		meta, err := json.Marshal(fwdPairMsg{Pair: st, State: p.State})
		if err != nil {
			return err
		}
		err = c.Send(ctx, kindFwdPair, meta, p.A, p.B)
		clear(meta) // the pipe's secrets, base64'd
		return err
	})
	end, _ := json.Marshal(sent)
	if eerr := c.Send(ctx, kindFwdPairs, end); err == nil {
		err = eerr
	}
	return errors.Join(serr, err)
}

func (h fwdHandover) Adopt(ctx context.Context, c *upgrade.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, h.setupTimeout)
	defer cancel()
	adopted, closed := 0, 0
	defer func() { h.d.Log().Info("upgrade: pairs taken over", "adopted", adopted, "closed", closed) }()
	for {
		kind, meta, files, err := c.Recv(ctx)
		if err != nil {
			return fmt.Errorf("upgrade: receive pairs: %w", err)
		}
		switch kind {
		case kindFwdPairs:
			closeAll(files)
			return nil
		case kindFwdPair:
		default:
			closeAll(files)
			return fmt.Errorf("upgrade: unexpected message %q among the pairs", kind)
		}
		var msg fwdPairMsg
		err = json.Unmarshal(meta, &msg)
		clear(meta)
		if err != nil || len(files) != 2 {
			closeAll(files)
			clear(msg.State)
			closed++
			h.d.Log().Warn("upgrade: a pair message cannot be read; dropped", "files", len(files), "err", err)
			continue
		}
		p := &pipe.Detached{A: files[0], B: files[1], State: msg.State, Tag: msg.Pair.Forward}
		if err := h.d.Adopt(p, msg.Pair); err != nil {
			closed++
			h.d.Log().Warn("upgrade: pair not adopted; closed", "forward", msg.Pair.Forward, "client", msg.Pair.Client,
				"upstream", msg.Pair.Upstream, "err", err)
			continue
		}
		adopted++
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
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

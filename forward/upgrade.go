package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/upgrade"
)

// The kinds of upgrade messages that carry the forwards' pairs.
const (
	kindPair  = "forward-pair"  // meta: pairMsg; files: the client and upstream sockets
	kindPairs = "forward-pairs" // the end of them: meta is the count sent
)

// pairMsg is a kindPair's meta.
type pairMsg struct {
	Pair  PairState `json:"pair"`
	State []byte    `json:"state"` // pipe.Detached.State: may hold TLS secrets, wiped once sent
}

// HandOverConn is the old process's side of a binary upgrade over c,
// once the new process serves the listeners: it stops accepting, lets the
// connections accepted be set up rather than aborted, then sends every
// established pair that can move (HandOver): one message each with its
// two sockets, then the count. timeout bounds each step. Pairs that
// cannot move (TLS on goroutines, half-closed on goroutines, still
// connecting) drain here, and so do those the new process did not
// confirm it took (it died or gave up before): they are adopted here
// again (Adopt), from the state they left with.
func (d *Daemon) HandOverConn(ctx context.Context, c *upgrade.Conn, timeout time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	serr := d.StopAccepting(sctx)
	cancel()
	if serr != nil {
		serr = fmt.Errorf("connections still being set up when the hand-over began (they drain here): %w", serr)
	}
	ctx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	out := upgrade.NewOutbox(c, func(v any) { clear(v.(heldPair).state) })
	sent, _, err := d.HandOver(ctx, func(p *pipe.Detached, st PairState) error {
		meta, err := upgrade.MetaWithState("pair", st, "state", p.State) // a pairMsg
		if err != nil {
			return err
		}
		hp := heldPair{st: st, state: bytes.Clone(p.State)}
		err = out.Send(ctx, kindPair, meta, hp, p.A, p.B)
		clear(meta) // the pipe's secrets, base64'd
		if err != nil {
			clear(hp.state)
		}
		return err
	})
	end, _ := json.Marshal(sent)
	back, ferr := out.Finish(ctx, kindPairs, end)
	if err == nil {
		err = ferr
	}
	if len(back) > 0 {
		d.takeBack(back)
	}
	return errors.Join(serr, err)
}

// heldPair is what the old process keeps of a pair sent until the new
// one confirms it: enough to adopt it again.
type heldPair struct {
	st    PairState
	state []byte // pipe.Detached.State
}

// takeBack adopts here again the pairs the new process did not take.
func (d *Daemon) takeBack(back []upgrade.Held) {
	again := 0
	for _, h := range back {
		hp := h.Value.(heldPair)
		p := &pipe.Detached{A: h.Files[0], B: h.Files[1], State: hp.state, Tag: hp.st.Forward}
		if err := d.Adopt(p, hp.st); err != nil {
			d.log.Warn("upgrade: a pair the new process did not take cannot go on here; closed", "forward", hp.st.Forward,
				"client", hp.st.Client, "upstream", hp.st.Upstream, "err", err)
			continue
		}
		again++
	}
	d.log.Warn("upgrade: the new process did not take every pair; the rest go on here", "back", len(back), "adopted_again", again)
}

// AdoptConn is the new process's side: it gives each pair HandOverConn
// sends to the forward of the same listen address (Adopt), until the end
// of them or timeout. A pair whose forward is no longer configured, or
// whose message cannot be read, is closed and logged.
func (d *Daemon) AdoptConn(ctx context.Context, c *upgrade.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	adopted, closed := 0, 0
	defer func() { d.Log().Info("upgrade: pairs taken over", "adopted", adopted, "closed", closed) }()
	err := c.RecvEach(ctx, kindPair, kindPairs, func(meta []byte, files []*os.File) {
		var msg pairMsg
		err := json.Unmarshal(meta, &msg)
		clear(meta)
		if err != nil || len(files) != 2 {
			upgrade.CloseFiles(files)
			clear(msg.State)
			closed++
			d.Log().Warn("upgrade: a pair message cannot be read; dropped", "files", len(files), "err", err)
			return
		}
		p := &pipe.Detached{A: files[0], B: files[1], State: msg.State, Tag: msg.Pair.Forward}
		if err := d.Adopt(p, msg.Pair); err != nil {
			closed++
			d.Log().Warn("upgrade: pair not adopted; closed", "forward", msg.Pair.Forward, "client", msg.Pair.Client,
				"upstream", msg.Pair.Upstream, "err", err)
			return
		}
		adopted++
	})
	if err != nil {
		return fmt.Errorf("upgrade: receive pairs: %w", err)
	}
	return nil
}

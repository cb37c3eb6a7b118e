package maild

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/upgrade"
)

// The kinds of upgrade messages that carry sessions.
const (
	kindSession  = "mail-session"  // a piped session: meta is sessionMsg, files are its two sockets
	kindSessions = "mail-sessions" // the end of them: meta is the count sent
)

// sessionMsg is a kindSession's meta.
type sessionMsg struct {
	Session gateway.SessionState `json:"session"`
	State   []byte               `json:"state"` // pipe.Detached.State: holds secrets, wiped once sent
}

// sessionMover is what the protocols' servers (over gateway.Server) do
// in a hand-over.
type sessionMover interface {
	Quiesce(ctx context.Context) error
	Leaving(tag string) (gateway.SessionState, bool)
	Left(tag string)
	Stayed(tag string)
	Adopt(ctx context.Context, d *pipe.Detached, st gateway.SessionState) error
}

// HandOver gives this daemon's sessions to the process at the other end
// of c, a binary upgrade whose new process serves the listeners now: the
// servers stop accepting, their pre-login sessions finish here (within
// the login timeout, ctx permitting), then every piped session that can
// leave is sent with its state; the others stay and drain here (Run's
// shutdown), and so do the sessions the new process did not confirm it
// took within drain_timeout (it died or gave up before): they are
// adopted here again, from the state they left with. It returns how many were sent (and taken)
// and how many stayed.
func (d *Daemon) HandOver(ctx context.Context, c *upgrade.Conn) (sent, stayed int, err error) {
	qctx, cancel := context.WithTimeout(ctx, d.loginTimeout())
	var errs []error
	for _, srv := range d.servers {
		if m, ok := srv.(sessionMover); ok {
			errs = append(errs, m.Quiesce(qctx))
		}
	}
	cancel()
	if err := errors.Join(errs...); err != nil {
		d.log.Warn(d.prefix+"upgrade: pre-login sessions still running, they stay here", "err", err)
	}
	// The new process takes the sessions within drain_timeout, or gets no more.
	ctx, cancel = context.WithTimeout(ctx, cmp.Or(d.settings.DrainTimeout, DefaultDrainTimeout))
	defer cancel()
	out := upgrade.NewOutbox(c, func(v any) { clear(v.(heldSession).state) })
	stayed, err = d.engine.DetachAll(ctx, func(p *pipe.Detached) error {
		m, st := d.owner(p.Tag)
		if m == nil {
			return fmt.Errorf("upgrade: a pipe of no server (tag %q)", p.Tag)
		}
		meta, err := upgrade.MetaWithState("session", st, "state", p.State) // a sessionMsg
		if err != nil {
			m.Stayed(p.Tag) // DetachAll carries it on here
			return err
		}
		hs := heldSession{m: m, st: st, state: bytes.Clone(p.State)}
		err = out.Send(ctx, kindSession, meta, hs, p.A, p.B)
		clear(meta) // the pipe's secrets, base64'd
		if err != nil {
			clear(hs.state)
			m.Stayed(p.Tag)
			return err
		}
		m.Left(p.Tag)
		sent++
		return nil
	})
	end, _ := json.Marshal(sent)
	back, ferr := out.Finish(ctx, kindSessions, end)
	if err == nil {
		err = ferr
	}
	if len(back) > 0 {
		sent -= len(back)
		stayed += d.takeBack(ctx, back)
	}
	return sent, stayed, err
}

// heldSession is what the old process keeps of a session sent until the
// new one confirms it: enough to adopt it again.
type heldSession struct {
	m     sessionMover
	st    gateway.SessionState
	state []byte // pipe.Detached.State
}

// takeBack adopts here again the sessions the new process did not take;
// it returns how many go on.
func (d *Daemon) takeBack(ctx context.Context, back []upgrade.Held) (again int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.loginTimeout()) // a pool session's lease: Redis
	defer cancel()
	for _, h := range back {
		hs := h.Value.(heldSession)
		p := &pipe.Detached{A: h.Files[0], B: h.Files[1], State: hs.state, Tag: hs.st.ID}
		if err := hs.m.Adopt(ctx, p, hs.st); err != nil {
			d.log.Warn(d.prefix+"upgrade: a session the new process did not take cannot go on here; closed", "session", hs.st.ID, "err", err)
			continue
		}
		again++
	}
	d.log.Warn(d.prefix+"upgrade: the new process did not take every session; the rest go on here", "back", len(back), "adopted_again", again)
	return again
}

// owner finds the server a piped session's tag belongs to.
func (d *Daemon) owner(tag string) (sessionMover, gateway.SessionState) {
	for _, srv := range d.servers {
		if m, ok := srv.(sessionMover); ok {
			if st, ok := m.Leaving(tag); ok {
				return m, st
			}
		}
	}
	return nil, gateway.SessionState{}
}

// TakeOver carries on the sessions the old process's HandOver sends on c,
// each by a server of its protocol, until the end of them. It returns how
// many were adopted; a session that cannot be is closed and logged, and
// the others go on. Messages are read in order, and adopted by
// adoptWorkers goroutines: an adoption derives keys and, for a pool
// session, waits for Redis (its lease), which need not hold up the next.
func (d *Daemon) TakeOver(ctx context.Context, c *upgrade.Conn) (adopted int, err error) {
	jobs := make(chan adoption, adoptWorkers)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range adoptWorkers {
		wg.Add(1)
		go d.adoptEach(ctx, jobs, &n, &wg)
	}
	err = c.RecvEach(ctx, kindSession, kindSessions, func(meta []byte, files []*os.File) {
		var msg sessionMsg
		err := json.Unmarshal(meta, &msg)
		clear(meta)
		if err != nil || len(files) != 2 {
			upgrade.CloseFiles(files)
			clear(msg.State)
			d.log.Warn(d.prefix+"upgrade: a session message cannot be read, dropped", "files", len(files), "err", err)
			return
		}
		p := &pipe.Detached{A: files[0], B: files[1], State: msg.State, Tag: msg.Session.ID}
		m := d.server(msg.Session.Protocol)
		if m == nil {
			p.Wipe()
			d.log.Warn(d.prefix+"upgrade: session of a protocol not served here, closed", "session", msg.Session.ID, "protocol", msg.Session.Protocol)
			return
		}
		jobs <- adoption{m: m, p: p, st: msg.Session}
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		return int(n.Load()), fmt.Errorf("upgrade: receive sessions: %w", err)
	}
	return int(n.Load()), nil
}

// adoptWorkers is how many sessions TakeOver adopts at once.
const adoptWorkers = 4

// adoption is one session received, for a server of its protocol.
type adoption struct {
	m  sessionMover
	p  *pipe.Detached
	st gateway.SessionState
}

// adoptEach adopts the sessions of jobs until it is closed, counting
// those adopted in n.
func (d *Daemon) adoptEach(ctx context.Context, jobs <-chan adoption, n *atomic.Int64, wg *sync.WaitGroup) {
	defer wg.Done()
	for j := range jobs {
		if err := j.m.Adopt(ctx, j.p, j.st); err != nil {
			d.log.Warn(d.prefix+"upgrade: session not adopted, closed", "session", j.st.ID, "err", err)
			continue
		}
		n.Add(1)
	}
}

func (d *Daemon) server(protocol string) sessionMover {
	for i, l := range d.settings.Listen {
		if l.Protocol == protocol {
			if m, ok := d.servers[i].(sessionMover); ok {
				return m
			}
		}
	}
	return nil
}

// loginTimeout bounds how long pre-login sessions may take to finish
// before the hand-over goes on without them.
func (d *Daemon) loginTimeout() time.Duration {
	if t := d.settings.LoginTimeout; t > 0 {
		return t
	}
	return gateway.DefaultLoginTimeout
}

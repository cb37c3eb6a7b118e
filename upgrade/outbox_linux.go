package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Outbox sends the messages of a hand-over that the other process must
// confirm before this one lets go of what they carry (a client's
// connection). Each message holds a value of the caller's and duplicates
// of its files until the new process confirms that it took the message;
// then release gets the value and the duplicates are closed. Finish
// returns what was not taken, for the caller to carry on itself: nothing
// is lost when the new process dies or gives up in the middle.
//
// The new process confirms a message (RecvEach does, on the Conn Dial
// returned) before it acts on it, and only while this side still reads
// confirmations: Finish stops reading them (shutdown of the channel's
// receiving side) before it counts what was taken, so that a message is
// either confirmed here or never used there. With a peer of an earlier
// release, which confirms nothing (its Ready said so), a message counts as
// taken once sent, as before.
type Outbox struct {
	c       *Conn
	release func(v any)

	mu    sync.Mutex
	held  []Held // sent, not confirmed yet: oldest first
	sent  int    // messages sent, confirmed or not
	taken int    // of them, how many the peer confirmed
	last  int    // the count that ends the exchange (Finish's message), 0 before
	done  chan struct{}
	rerr  error // why the confirmations stopped
}

// Held is what a message sent through an Outbox keeps here until the peer
// took it: the caller's value and duplicates of the message's files
// (close-on-exec), which the caller then owns.
type Held struct {
	Value any
	Files []*os.File
}

// NewOutbox starts an Outbox on c, the old process's end of an upgrade
// after WaitReady. release is called (on a goroutine of the Outbox's) with
// the value of each message the peer took.
func NewOutbox(c *Conn, release func(v any)) *Outbox {
	o := &Outbox{c: c, release: release, done: make(chan struct{})}
	if c.acks {
		go o.readConfirmations()
	} else {
		close(o.done)
	}
	return o
}

// Send sends one message whose files the peer must take (Conn.Send), and
// holds v and duplicates of files until it confirms. On error the message
// did not reach the peer whole: nothing is held, and the caller carries
// the files' connections on itself. Sends are not concurrent.
func (o *Outbox) Send(ctx context.Context, kind string, meta []byte, v any, files ...*os.File) error {
	if !o.c.acks {
		if err := o.c.Send(ctx, kind, meta, files...); err != nil {
			return err
		}
		o.release(v)
		return nil
	}
	fds, err := dupFiles(files)
	if err != nil {
		return err
	}
	h := Held{Value: v, Files: make([]*os.File, len(fds))}
	for i, fd := range fds {
		h.Files[i] = os.NewFile(uintptr(fd), files[i].Name())
	}
	// Held before it is sent: its confirmation may come before Send returns.
	o.mu.Lock()
	o.held = append(o.held, h)
	o.sent++
	o.mu.Unlock()
	if err := o.c.Send(ctx, kind, meta, files...); err != nil {
		o.mu.Lock()
		o.held = o.held[:len(o.held)-1] // a message cut short is never confirmed
		o.sent--
		o.mu.Unlock()
		CloseFiles(h.Files)
		return err
	}
	return nil
}

// Finish sends the message that ends the exchange (kind end), waits
// within ctx for the peer's confirmation of everything, and returns what
// the peer did not take, oldest first: the caller owns those values and
// files and carries them on. The error says why the exchange ended short
// (the peer closed the channel, ctx ended); the Outbox is done after it.
func (o *Outbox) Finish(ctx context.Context, end string, meta []byte) ([]Held, error) {
	if !o.c.acks {
		return nil, o.c.Send(ctx, end, meta)
	}
	o.mu.Lock()
	o.last = o.sent + 1
	o.mu.Unlock()
	err := o.c.Send(ctx, end, meta)
	if err == nil {
		select {
		case <-o.done:
		case <-ctx.Done():
			err = fmt.Errorf("upgrade: waiting for the peer to confirm: %w", ctx.Err())
		}
	}
	// From here the peer can confirm nothing more, so it uses nothing more:
	// what is queued here is read, the rest comes back.
	if cerr := o.c.closeRead(); cerr != nil && err == nil {
		err = fmt.Errorf("upgrade: stop confirmations: %w", cerr)
	}
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	left := o.held
	o.held = nil
	if len(left) > 0 && err == nil {
		err = fmt.Errorf("upgrade: the peer took %d of %d messages: %w", o.taken, o.sent, o.rerr)
	}
	return left, err
}

// readConfirmations releases what the peer confirms until it confirmed
// the last message, or the channel's receiving side ends.
func (o *Outbox) readConfirmations() {
	defer close(o.done)
	for {
		kind, meta, files, err := o.c.Recv(context.Background())
		CloseFiles(files)
		if err == nil && kind != kindTaken {
			err = fmt.Errorf("upgrade: unexpected %q message among the confirmations", kind)
		}
		var n int
		if err == nil {
			if n, err = strconv.Atoi(string(meta)); err == nil && n < 0 {
				err = errors.New("negative count")
			}
			if err != nil {
				err = fmt.Errorf("upgrade: bad confirmation %q: %w", meta, err)
			}
		}
		if err != nil {
			o.mu.Lock()
			o.rerr = err
			o.mu.Unlock()
			return
		}
		if o.confirm(n) {
			return
		}
	}
}

// confirm releases the messages up to the n-th; it reports whether that
// was the last one.
func (o *Outbox) confirm(n int) (last bool) {
	o.mu.Lock()
	var gone []Held
	if k := min(n-o.taken, len(o.held)); k > 0 {
		gone = append(gone, o.held[:k]...)
		o.held = o.held[k:]
		o.taken += k
	}
	last = o.last > 0 && n >= o.last
	o.mu.Unlock()
	for _, h := range gone {
		CloseFiles(h.Files)
		o.release(h.Value)
	}
	return last
}

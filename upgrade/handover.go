package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

// Kinds of the hand-over messages.
const (
	kindListeners = "upgrade.listeners"
	kindReady     = "upgrade.ready"
	kindFailed    = "upgrade.failed"
	kindTaken     = "upgrade.taken" // meta: how many messages RecvEach took so far (decimal)
)

// readyMeta is a kindReady's meta (empty from an earlier release).
type readyMeta struct {
	// Taken: this new process confirms each message RecvEach takes.
	Taken bool `json:"taken,omitempty"`
}

type listenersMeta struct {
	Names []string `json:"names"`
}

// SendListeners hands ls to the new process under names (one each,
// unique, such as "listen[0] 127.0.0.1:143"), in one message. Each
// listener must be a *net.TCPListener or a *net.UnixListener (or have a
// File method like theirs); ls stay open and usable here, so that the old
// process serves until the new one is ready. A *net.UnixListener no longer
// removes its path when closed: the path belongs to the new process now.
func SendListeners(ctx context.Context, c *Conn, ls []net.Listener, names []string) error {
	if len(ls) != len(names) {
		return fmt.Errorf("upgrade: %d listeners and %d names", len(ls), len(names))
	}
	if len(ls) > MaxFiles {
		return fmt.Errorf("upgrade: %d listeners exceed the limit of %d", len(ls), MaxFiles)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || seen[n] {
			return fmt.Errorf("upgrade: listener name %q is empty or given twice", n)
		}
		seen[n] = true
	}
	files := make([]*os.File, 0, len(ls))
	defer func() { closeFiles(files) }() // the duplicates made by File
	for i, l := range ls {
		fl, ok := l.(interface{ File() (*os.File, error) })
		if !ok {
			return fmt.Errorf("upgrade: listener %q is a %T: only TCP and Unix listeners can be handed over", names[i], l)
		}
		f, err := fl.File()
		if err != nil {
			return fmt.Errorf("upgrade: listener %q: %w", names[i], err)
		}
		files = append(files, f)
	}
	meta, err := json.Marshal(listenersMeta{Names: names})
	if err != nil {
		return fmt.Errorf("upgrade: listener names: %w", err)
	}
	if err := c.Send(ctx, kindListeners, meta, files...); err != nil {
		return err
	}
	for _, l := range ls {
		if ul, ok := l.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
	}
	return nil
}

// RecvListeners receives the listeners sent by SendListeners, by name. On
// error none stays open.
func RecvListeners(ctx context.Context, c *Conn) (map[string]net.Listener, error) {
	kind, meta, files, err := c.Recv(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFiles(files) // FileListener keeps its own descriptor
	if kind != kindListeners {
		return nil, fmt.Errorf("upgrade: expected the listeners, got a %q message", kind)
	}
	var m listenersMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("upgrade: listener names: %w", err)
	}
	if len(m.Names) != len(files) {
		return nil, fmt.Errorf("upgrade: %d listener names for %d files", len(m.Names), len(files))
	}
	ls := make(map[string]net.Listener, len(files))
	for i, f := range files {
		l, err := net.FileListener(f)
		if err == nil {
			if _, dup := ls[m.Names[i]]; dup {
				l.Close()
				err = errors.New("name given twice")
			}
		}
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("upgrade: received listener %q: %w", m.Names[i], err)
		}
		ls[m.Names[i]] = l
	}
	return ls, nil
}

// Ready tells the old process that this one serves: it may stop accepting.
func (c *Conn) Ready(ctx context.Context) error {
	var meta []byte
	if c.acks {
		meta, _ = json.Marshal(readyMeta{Taken: true})
	}
	return c.Send(ctx, kindReady, meta)
}

// Failed tells the old process that this one cannot serve, and why (cut
// at MaxMeta bytes): the old process keeps serving.
func (c *Conn) Failed(ctx context.Context, reason string) error {
	if len(reason) > MaxMeta {
		reason = reason[:MaxMeta]
	}
	return c.Send(ctx, kindFailed, []byte(reason))
}

// WaitReady waits for the new process's verdict: nil once it serves, a
// *FailedError with its reason when it failed or closed the channel, or
// ctx's error (errors.Is) when it took too long. On any error the caller
// keeps serving: the upgrade is rolled back.
func (c *Conn) WaitReady(ctx context.Context) error {
	kind, meta, files, err := c.Recv(ctx)
	closeFiles(files)
	switch {
	case errors.Is(err, io.EOF):
		return &FailedError{Reason: "it closed the upgrade channel before it was ready"}
	case err != nil:
		return fmt.Errorf("upgrade: waiting for the new process: %w", err)
	case kind == kindReady:
		var m readyMeta
		if len(meta) > 0 && json.Unmarshal(meta, &m) == nil {
			c.acks = m.Taken
		}
		return nil
	case kind == kindFailed:
		return &FailedError{Reason: string(meta)}
	default:
		return fmt.Errorf("upgrade: waiting for the new process: unexpected %q message", kind)
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// RecvEach receives the messages of kind that the other side sends one
// after the other (Outbox.Send), until one of kind end (Outbox.Finish):
// each gets every one's meta and files (which it then owns). The end
// message's files are closed; a message of any other kind is an error, as
// is a failed Recv.
//
// With an old process that reads confirmations, each message is confirmed
// before each sees it: should the confirmation fail (the old process gave
// up waiting, or is gone), the message's files are closed and RecvEach
// returns the error, for the old process carries that message's
// connections on itself.
func (c *Conn) RecvEach(ctx context.Context, kind, end string, each func(meta []byte, files []*os.File)) error {
	for taken := 1; ; taken++ {
		k, meta, files, err := c.Recv(ctx)
		if err != nil {
			return err
		}
		if k == kind || k == end {
			if err := c.confirm(ctx, taken); err != nil {
				clear(meta)
				CloseFiles(files)
				return err
			}
		}
		switch k {
		case kind:
			each(meta, files)
		case end:
			CloseFiles(files)
			return nil
		default:
			CloseFiles(files)
			return fmt.Errorf("upgrade: unexpected message %q among the %q ones", k, kind)
		}
	}
}

// confirm tells an old process that reads confirmations that the n-th
// message was taken.
func (c *Conn) confirm(ctx context.Context, n int) error {
	if !c.acks {
		return nil
	}
	if err := c.Send(ctx, kindTaken, strconv.AppendInt(nil, int64(n), 10)); err != nil {
		return fmt.Errorf("upgrade: confirming message %d: %w", n, err)
	}
	return nil
}

// CloseFiles closes files received with a message that is not used.
func CloseFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

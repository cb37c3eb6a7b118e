package process

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
)

// TestHeldListeners: a socket received is given once under its name, the
// duplicates kept for an upgrade go with retain (the port is free again),
// and a quiet listener stops accepting without an error to its server.
func TestHeldListeners(t *testing.T) {
	h := newHeldListeners(slog.New(slog.NewTextHandler(io.Discard, nil)))
	received, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.inherit(map[string]net.Listener{"forward 127.0.0.1:1": received})
	opened := 0
	open := func(addr string) (net.Listener, error) { opened++; return net.Listen("tcp", "127.0.0.1:0") }
	hook := h.hook("forward", open)
	ln, err := hook("127.0.0.1:1")
	if err != nil || ln != received || opened != 0 {
		t.Fatalf("hook gave %v, %v (opened %d); want the socket received", ln, err, opened)
	}
	other, err := hook("127.0.0.1:2")
	if err != nil || opened != 1 {
		t.Fatalf("hook for an address not received: %v (opened %d)", err, opened)
	}
	ls, names := h.snapshot()
	if !slices.Equal(names, []string{"forward 127.0.0.1:1", "forward 127.0.0.1:2"}) {
		t.Fatalf("snapshot names %q", names)
	}
	f, err := ls[1].(fileListener).File()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The daemon closes the second at a reload: retain drops our duplicate.
	addr := other.Addr().String()
	other.Close()
	h.retain([]string{"forward 127.0.0.1:1"})
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held after retain: %v", err)
	}
	again.Close()
	h.close()
	ln.Close()

	// A quiet listener: Accept waits for Close after silence.
	qh := h.quietHook("metrics", func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") })
	q, err := qh("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go acceptOnce(q, accepted)
	h.handedOver()
	qaddr := q.Addr().String()
	if c, err := net.Dial("tcp", qaddr); err == nil {
		c.Close()
		t.Fatal("a silenced listener still accepts")
	}
	select {
	case err := <-accepted:
		t.Fatalf("Accept returned before Close: %v", err)
	default:
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func acceptOnce(l net.Listener, done chan<- error) {
	c, err := l.Accept()
	if c != nil {
		c.Close()
	}
	done <- err
}

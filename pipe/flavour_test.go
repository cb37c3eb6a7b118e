package pipe

import (
	"context"
	"net"
	"testing"
)

// flavour is one way of running a pipe; every behaviour test runs on each.
type flavour struct {
	name  string
	enter func(t *testing.T, a, b net.Conn, opts *Options, afterClose func(Result))
}

// flavours: pipe.Go, Join, and Engine in both modes (FlavourAuto puts plain socket pairs on the event loops).
var flavours = []flavour{
	{"go", enterGo},
	{"join", enterJoin},
	{"engine-goroutines", engineFlavour(FlavourGoroutines)},
	{"engine-auto", engineFlavour(FlavourAuto)},
}

func forFlavours(t *testing.T, test func(t *testing.T, fl flavour)) {
	for _, fl := range flavours {
		t.Run(fl.name, func(t *testing.T) { test(t, fl) })
	}
}

func enterGo(_ *testing.T, a, b net.Conn, opts *Options, afterClose func(Result)) {
	Go(a, b, opts, afterClose)
}

func enterJoin(_ *testing.T, a, b net.Conn, opts *Options, afterClose func(Result)) {
	go joinThen(a, b, opts, afterClose)
}

// joinThen is the goroutine of a pipe run with Join.
func joinThen(a, b net.Conn, opts *Options, afterClose func(Result)) {
	afterClose(Join(context.Background(), a, b, opts))
}

// engineFlavour enters each pipe into an Engine of its own, shut down at
// the end of the test.
func engineFlavour(f Flavour) func(t *testing.T, a, b net.Conn, opts *Options, afterClose func(Result)) {
	return func(t *testing.T, a, b net.Conn, opts *Options, afterClose func(Result)) {
		t.Helper()
		e := &Engine{Flavour: f}
		if opts != nil {
			e.Options = *opts
		}
		if err := e.Enter(a, b, afterClose); err != nil {
			t.Fatalf("Enter: %v", err)
		}
		t.Cleanup(func() { shutdownNow(e) })
	}
}

// shutdownNow stops an Engine's pipes at once and waits for them.
func shutdownNow(e *Engine) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return e.Shutdown(ctx)
}

// engineModes are the Engine's flavours, for the Engine's own tests.
var engineModes = []Flavour{FlavourGoroutines, FlavourAuto}

func forEngineModes(t *testing.T, test func(t *testing.T, f Flavour)) {
	for _, f := range engineModes {
		t.Run(f.String(), func(t *testing.T) { test(t, f) })
	}
}

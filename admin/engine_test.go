package admin_test

import (
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/pipe"
)

// TestEngineCollector: a pair the loops cannot take (net.Pipe) is counted
// under its reason.
func TestEngineCollector(t *testing.T) {
	var eng pipe.Engine
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	done := make(chan struct{})
	if err := eng.Enter(a1, b1, func(pipe.Result) { close(done) }); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(admin.NewEngineCollector(func() map[string]pipe.Stats {
		return map[string]pipe.Stats{"test": eng.Stats()}
	}))
	want := `
# HELP pipegate_engine_pipes_open Pipes running now.
# TYPE pipegate_engine_pipes_open gauge
pipegate_engine_pipes_open{engine="test"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pipegate_engine_pipes_open"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "pipegate_engine_fallbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == pipe.FallbackConnType.String() && m.GetCounter().GetValue() == 1 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("no fallback counted for a net.Pipe pair: %v", mfs)
	}
	a2.Close()
	b2.Close()
	<-done
}

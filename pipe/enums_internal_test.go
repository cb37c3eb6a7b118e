package pipe

import (
	"testing"

	"pipegate/pipe/internal/evloop"
)

// resultOf converts evloop's Side and Reason with plain conversions: the
// two sets of constants must keep the same values and names.
func TestEnumsMatchEvloop(t *testing.T) {
	sides := []struct {
		loop evloop.Side
		pipe Side
	}{{evloop.SideNone, SideNone}, {evloop.SideA, SideA}, {evloop.SideB, SideB}}
	for _, s := range sides {
		if Side(s.loop) != s.pipe || s.loop.String() != s.pipe.String() {
			t.Errorf("evloop side %d (%s) != pipe side %d (%s)", s.loop, s.loop, s.pipe, s.pipe)
		}
	}
	reasons := []struct {
		loop evloop.Reason
		pipe Reason
	}{
		{evloop.ReasonEOF, ReasonEOF}, {evloop.ReasonReset, ReasonReset},
		{evloop.ReasonIdleTimeout, ReasonIdleTimeout}, {evloop.ReasonLifetime, ReasonLifetime},
		{evloop.ReasonLinger, ReasonLinger}, {evloop.ReasonShutdown, ReasonShutdown},
		{evloop.ReasonError, ReasonError},
	}
	for _, r := range reasons {
		if Reason(r.loop) != r.pipe || r.loop.String() != r.pipe.String() {
			t.Errorf("evloop reason %d (%s) != pipe reason %d (%s)", r.loop, r.loop, r.pipe, r.pipe)
		}
	}
}

package evloop

import (
	"testing"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

func TestNextDeadline(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	cases := []struct {
		name   string
		opts   core.Options
		start  int64
		active int64
		linger int64
		at     int64
		why    core.Reason
	}{
		{"none", core.Options{}, 1, 1, 0, 0, core.ReasonEOF},
		{"idle from last activity", core.Options{IdleTimeout: time.Second}, 1, ms(500), 0, ms(1500), core.ReasonIdleTimeout},
		{"lifetime before idle", core.Options{IdleTimeout: time.Second, MaxLifetime: time.Second}, 1, ms(500), 0, ms(1000) + 1, core.ReasonLifetime},
		{"linger counts silence after half-close", core.Options{HalfCloseLinger: time.Second}, 1, ms(2000), ms(1000), ms(3000), core.ReasonLinger},
		{"linger from half-close when silent since", core.Options{HalfCloseLinger: time.Second}, 1, ms(200), ms(1000), ms(2000), core.ReasonLinger},
		{"linger wins a tie with idle", core.Options{HalfCloseLinger: time.Second, IdleTimeout: time.Second}, 1, ms(1000), ms(1000), ms(2000), core.ReasonLinger},
		{"idle before a longer linger", core.Options{HalfCloseLinger: 2 * time.Second, IdleTimeout: time.Second}, 1, ms(1000), ms(1000), ms(2000), core.ReasonIdleTimeout},
		{"linger forever", core.Options{HalfCloseLinger: -1}, 1, ms(200), ms(1000), 0, core.ReasonEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &pair{opts: tc.opts, startNS: tc.start, lastActive: tc.active, lingerFrom: tc.linger}
			at, why := p.nextDeadline()
			if at != tc.at || (at != 0 && why != tc.why) {
				t.Fatalf("nextDeadline = %d, %s; want %d, %s", at, why, tc.at, tc.why)
			}
		})
	}
}

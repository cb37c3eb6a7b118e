package evloop

import (
	"testing"
	"time"
)

func TestNextDeadline(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	cases := []struct {
		name   string
		opts   Options
		start  int64
		active int64
		linger int64
		at     int64
		why    Reason
	}{
		{"none", Options{}, 1, 1, 0, 0, ReasonEOF},
		{"idle from last activity", Options{IdleTimeout: time.Second}, 1, ms(500), 0, ms(1500), ReasonIdleTimeout},
		{"lifetime before idle", Options{IdleTimeout: time.Second, MaxLifetime: time.Second}, 1, ms(500), 0, ms(1000) + 1, ReasonLifetime},
		{"linger counts silence after half-close", Options{HalfCloseLinger: time.Second}, 1, ms(2000), ms(1000), ms(3000), ReasonLinger},
		{"linger from half-close when silent since", Options{HalfCloseLinger: time.Second}, 1, ms(200), ms(1000), ms(2000), ReasonLinger},
		{"linger wins a tie with idle", Options{HalfCloseLinger: time.Second, IdleTimeout: time.Second}, 1, ms(1000), ms(1000), ms(2000), ReasonLinger},
		{"idle before a longer linger", Options{HalfCloseLinger: 2 * time.Second, IdleTimeout: time.Second}, 1, ms(1000), ms(1000), ms(2000), ReasonIdleTimeout},
		{"linger forever", Options{HalfCloseLinger: -1}, 1, ms(200), ms(1000), 0, ReasonEOF},
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

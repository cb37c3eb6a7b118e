package evloop

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type timed struct {
	due int64
	ix  int
}

func TestTimerHeapOrder(t *testing.T) {
	h := timerHeap[*timed]{due: func(x *timed) int64 { return x.due }, setIx: func(x *timed, i int) { x.ix = i }}
	r := rand.New(rand.NewPCG(1, 2))
	var all []*timed
	for i := 0; i < 1000; i++ {
		x := &timed{due: r.Int64N(1e6)}
		all = append(all, x)
		h.push(x)
	}
	// Remove every third, move some later (the lazy re-file), check order.
	var kept []int64
	for i, x := range all {
		switch i % 3 {
		case 0:
			h.remove(x.ix)
			if x.ix != -1 {
				t.Fatalf("removed item keeps index %d", x.ix)
			}
			continue
		case 1:
			x.due += r.Int64N(1e6)
			h.fix(x.ix)
		}
		kept = append(kept, x.due)
	}
	slices.Sort(kept)
	var got []int64
	for h.len() > 0 {
		x := h.peek()
		if h.items[x.ix] != x {
			t.Fatalf("index %d of item is stale", x.ix)
		}
		got = append(got, x.due)
		h.remove(0)
	}
	if !slices.Equal(got, kept) {
		t.Fatalf("heap order differs: got %d items, want %d", len(got), len(kept))
	}
}

package affinity

import (
	"math"
	"testing"
)

// FuzzRingPick: for any user, weights, loads and health, Pick returns an
// eligible member, the same one twice, and one within its load bound
// whenever some eligible member is within its bound.
func FuzzRingPick(f *testing.F) {
	f.Add("alice", uint8(1), uint8(1), uint8(0), uint16(3), uint16(0), uint16(9), uint8(0))
	f.Add("bob", uint8(0), uint8(0), uint8(2), uint16(0), uint16(0), uint16(0), uint8(4))
	f.Add("", uint8(5), uint8(1), uint8(1), uint16(100), uint16(1), uint16(1), uint8(2))
	f.Fuzz(func(t *testing.T, user string, w1, w2, w3 uint8, l1, l2, l3 uint16, downMask uint8) {
		members := []Member{{"a", int(w1 % 8)}, {"b", int(w2 % 8)}, {"c", int(w3 % 8)}}
		loads := map[string]int{"a": int(l1), "b": int(l2), "c": int(l3)}
		skip := func(n string) bool { return downMask&(1<<(n[0]-'a')) != 0 }
		r := NewRing(members, 10)
		m, ok := r.Pick(user, loads, skip, 0)
		var eligible []Member
		total, weights := 0, 0
		for _, mb := range members {
			if mb.Weight > 0 && !skip(mb.Name) {
				eligible = append(eligible, mb)
				total += loads[mb.Name]
				weights += mb.Weight
			}
		}
		if len(eligible) == 0 {
			if ok {
				t.Fatalf("picked %q with no eligible member", m)
			}
			return
		}
		if !ok {
			t.Fatal("no pick although a member is eligible")
		}
		var chosen *Member
		for i := range eligible {
			if eligible[i].Name == m {
				chosen = &eligible[i]
			}
		}
		if chosen == nil {
			t.Fatalf("picked %q: draining or unhealthy", m)
		}
		if again, _ := r.Pick(user, loads, skip, 0); again != m {
			t.Fatalf("picked %q then %q", m, again)
		}
		within := func(mb Member) bool {
			return float64(loads[mb.Name]+1) <= math.Ceil(1.25*float64(total+1)*float64(mb.Weight)/float64(weights))
		}
		anyWithin := false
		for _, mb := range eligible {
			anyWithin = anyWithin || within(mb)
		}
		if anyWithin && !within(*chosen) {
			t.Fatalf("picked %q over its bound (loads %v, members %v)", m, loads, members)
		}
	})
}

package affinity

import (
	"fmt"
	"math"
	"testing"
)

func users(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = fmt.Sprintf("user%d@example.test", i)
	}
	return u
}

// TestRingDeterministic: two rings of the same members (in any order of
// construction) give every user the same member.
func TestRingDeterministic(t *testing.T) {
	a := NewRing([]Member{{"a", 1}, {"b", 2}, {"c", 1}}, 0)
	b := NewRing([]Member{{"a", 1}, {"b", 2}, {"c", 1}}, 0)
	for _, u := range users(1000) {
		ma, _ := a.Pick(u, nil, nil, 0)
		mb, _ := b.Pick(u, nil, nil, 0)
		if ma != mb {
			t.Fatalf("%s: %s then %s", u, ma, mb)
		}
	}
}

// TestRingWeights: with no load, users spread in proportion to weight;
// a member of weight 0 gets none.
func TestRingWeights(t *testing.T) {
	r := NewRing([]Member{{"a", 1}, {"b", 3}, {"z", 0}}, 0)
	count := map[string]int{}
	for _, u := range users(20000) {
		m, ok := r.Pick(u, nil, nil, 0)
		if !ok {
			t.Fatal("no member")
		}
		count[m]++
	}
	if count["z"] != 0 {
		t.Fatalf("draining member got %d users", count["z"])
	}
	if share := float64(count["b"]) / 20000; math.Abs(share-0.75) > 0.05 {
		t.Fatalf("weight 3 of 4 got %.3f of the users (%v)", share, count)
	}
}

// TestRingBoundedLoads: assigning users one by one (each adds a session),
// no member ever exceeds ceil((1+ε)·average), even with a hot spot.
func TestRingBoundedLoads(t *testing.T) {
	for _, eps := range []float64{0.05, 0.25, 1} {
		r := NewRing([]Member{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}}, 0)
		loads := map[string]int{"a": 0}
		total := 0
		for i, u := range users(5000) {
			if i%3 == 0 {
				u = "hot" // the same user again and again would go to one member
			}
			m, _ := r.Pick(u, loads, nil, eps)
			loads[m]++
			total++
			bound := math.Ceil((1 + eps) * float64(total) / 4)
			if float64(loads[m]) > bound {
				t.Fatalf("ε=%v: %s has %d of %d sessions, bound %v", eps, m, loads[m], total, bound)
			}
		}
	}
}

// TestRingAddMember: adding a fifth member to four moves about 1/5 of the
// users, all of them to the new member.
func TestRingAddMember(t *testing.T) {
	four := NewRing([]Member{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}}, 0)
	five := NewRing([]Member{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}, 0)
	moved := 0
	us := users(20000)
	for _, u := range us {
		m4, _ := four.Pick(u, nil, nil, 0)
		m5, _ := five.Pick(u, nil, nil, 0)
		if m4 != m5 {
			moved++
			if m5 != "e" {
				t.Fatalf("%s moved from %s to %s, not to the new member", u, m4, m5)
			}
		}
	}
	if f := float64(moved) / float64(len(us)); f < 0.15 || f > 0.25 {
		t.Fatalf("%.3f of the users moved; want about 0.2", f)
	}
}

// TestRingSkip: a skipped (unhealthy) member gets nobody; its users go to
// others and come back when it returns.
func TestRingSkip(t *testing.T) {
	r := NewRing(threeMembers, 0)
	for _, u := range users(2000) {
		before, _ := r.Pick(u, nil, nil, 0)
		during, _ := r.Pick(u, nil, func(n string) bool { return n == "m2" }, 0)
		if during == "m2" {
			t.Fatalf("%s on the skipped member", u)
		}
		if before != "m2" && during != before {
			t.Fatalf("%s moved from %s to %s although its member is fine", u, before, during)
		}
	}
	if _, ok := r.Pick("x", nil, func(string) bool { return true }, 0); ok {
		t.Fatal("a member although all are skipped")
	}
	if _, ok := NewRing([]Member{{"a", 0}}, 0).Pick("x", nil, nil, 0); ok {
		t.Fatal("a member although all are draining")
	}
}

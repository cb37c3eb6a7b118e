package affinity

import (
	"math"
	"sort"
	"strconv"
)

// Member is one backend of a pool. Name is opaque to this package (the
// gateway uses the member's address or URL); Weight is how many shares of
// new users it takes: 0 drains it (its users stay, no new ones come).
type Member struct {
	Name   string
	Weight int
}

// DefaultVNodes is the number of points on the ring per unit of weight,
// as Dovecot's Director's default of 100 vhosts.
const DefaultVNodes = 100

// DefaultEpsilon is the load slack of the bounded-load rule: no member
// takes a new user while it holds more than (1+ε) times its weighted share.
const DefaultEpsilon = 0.25

// Ring is a consistent-hash ring with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018; HAProxy's
// hash-balance-factor). It is immutable and safe for concurrent use.
type Ring struct {
	members []Member
	points  []point // sorted by hash
}

type point struct {
	hash   uint64
	member int32
}

// NewRing places vnodes points per unit of weight for every member
// (vnodes <= 0 means DefaultVNodes). Members of weight 0 get no points.
// The same members give the same ring in every process.
func NewRing(members []Member, vnodes int) *Ring {
	if vnodes <= 0 {
		vnodes = DefaultVNodes
	}
	r := &Ring{members: append([]Member(nil), members...)}
	for i, m := range members {
		for v := 0; v < m.Weight*vnodes; v++ {
			r.points = append(r.points, point{hash: hashString(m.Name + "\x00" + strconv.Itoa(v)), member: int32(i)})
		}
	}
	sort.Slice(r.points, func(a, b int) bool {
		pa, pb := r.points[a], r.points[b]
		if pa.hash != pb.hash {
			return pa.hash < pb.hash
		}
		return r.members[pa.member].Name < r.members[pb.member].Name
	})
	return r
}

// Members returns the members the ring was built from.
func (r *Ring) Members() []Member { return append([]Member(nil), r.members...) }

// Pick chooses the member for a new user: walking the ring clockwise from
// the user's hash, the first member that is eligible (weight > 0 and
// skip(name) false; skip may be nil) and whose live sessions plus one stay
// within ceil((1+ε)·(total+1)·weight/Σweight), where total and Σweight are
// over the eligible members. loads holds live sessions by member name
// (missing = 0); epsilon <= 0 means DefaultEpsilon. Some eligible member
// is always under its bound, so ok is false only when none is eligible.
func (r *Ring) Pick(user string, loads map[string]int, skip func(name string) bool, epsilon float64) (name string, ok bool) {
	if epsilon <= 0 {
		epsilon = DefaultEpsilon
	}
	eligible := make([]bool, len(r.members))
	var total, weights int
	for i, m := range r.members {
		if m.Weight > 0 && (skip == nil || !skip(m.Name)) {
			eligible[i] = true
			total += max(loads[m.Name], 0)
			weights += m.Weight
		}
	}
	if weights == 0 || len(r.points) == 0 {
		return "", false
	}
	seen := make([]bool, len(r.members))
	first := -1
	h := hashString(user)
	start := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	for k := 0; k < len(r.points); k++ {
		i := int(r.points[(start+k)%len(r.points)].member)
		if seen[i] || !eligible[i] {
			continue
		}
		seen[i] = true
		if first < 0 {
			first = i
		}
		m := r.members[i]
		limit := math.Ceil((1 + epsilon) * float64(total+1) * float64(m.Weight) / float64(weights))
		if float64(max(loads[m.Name], 0)+1) <= limit {
			return m.Name, true
		}
	}
	// Unreachable with consistent loads (the bounds sum to more than
	// total+1); kept so that rounding can never leave a user without one.
	return r.members[first].Name, true
}

// hashString is FNV-1a 64 finished with the splitmix64 mixer, so that
// names differing in one trailing digit spread over the whole ring.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

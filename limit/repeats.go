package limit

import (
	"container/list"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
)

// repeatsKept is how many failed attempts an address's entry remembers,
// as Dovecot's anvil (src/anvil/penalty.c) keeps up to 10 checksums of
// user and password per address.
const repeatsKept = 10

// repeats remembers, per client address, the last few failed attempts so
// that the same account and password failing again does not raise the
// penalty: as in Dovecot, it is most likely a device with an old saved
// password, and it must not slow every other login from that address. An
// attempt is kept as a hash with a key made for this process, in this
// process's memory only: never the password, never in a shared store.
type repeats struct {
	seed maphash.Seed
	max  int
	now  func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element // of *repeatEntry
	lru *list.List               // oldest last use at the front
}

type repeatEntry struct {
	key     string
	sums    [repeatsKept]uint64
	n       int // sums in use, newest first
	expires time.Time
}

func newRepeats(max int, now func() time.Time) *repeats {
	if max <= 0 {
		max = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &repeats{seed: maphash.MakeSeed(), max: max, now: now, m: map[string]*list.Element{}, lru: list.New()}
}

// sum is the keyed hash of one attempt.
func (r *repeats) sum(account, password string) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(account))) // the fields cannot run together
	h.Write(n[:])
	h.WriteString(account)
	h.WriteString(password)
	return h.Sum64()
}

// seen records a failed attempt from key and reports whether the same
// attempt had failed from key within forget. Either way the entry lives
// for forget from now.
func (r *repeats) seen(key, account, password string, forget time.Duration) bool {
	sum := r.sum(account, password)
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	var e *repeatEntry
	if el, ok := r.m[key]; ok {
		e = el.Value.(*repeatEntry)
		r.lru.MoveToBack(el)
		if !e.expires.After(now) {
			e.n = 0
		}
	} else {
		e = &repeatEntry{key: key}
		r.m[key] = r.lru.PushBack(e)
		if r.lru.Len() > r.max {
			r.drop(r.lru.Front())
		}
	}
	e.expires = now.Add(forget)
	for i := 0; i < e.n; i++ {
		if e.sums[i] == sum {
			copy(e.sums[1:i+1], e.sums[:i]) // newest first
			e.sums[0] = sum
			return true
		}
	}
	copy(e.sums[1:], e.sums[:repeatsKept-1])
	e.sums[0] = sum
	e.n = min(e.n+1, repeatsKept)
	return false
}

// forget drops key's attempts (after a success).
func (r *repeats) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.m[key]; ok {
		r.drop(el)
	}
}

// expire drops the entries whose time is up; they are ordered by last use,
// and each lives for the same forget, so they sit at the front.
func (r *repeats) expire(now time.Time) {
	for el := r.lru.Front(); el != nil; el = r.lru.Front() {
		if el.Value.(*repeatEntry).expires.After(now) {
			return
		}
		r.drop(el)
	}
}

func (r *repeats) drop(el *list.Element) {
	delete(r.m, el.Value.(*repeatEntry).key)
	r.lru.Remove(el)
}

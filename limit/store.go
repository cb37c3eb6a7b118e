package limit

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// PenaltyStore counts auth failures per key. Implementations are safe for
// concurrent use.
type PenaltyStore interface {
	// Fail counts one more failure for key and returns the new count. The
	// key is forgotten once forget passes without another failure.
	Fail(ctx context.Context, key string, forget time.Duration) (failures int64, err error)
	// Failures returns the current count for key (0 when unknown).
	Failures(ctx context.Context, key string) (int64, error)
	// Reset forgets key.
	Reset(ctx context.Context, key string) error
}

// DefaultMaxKeys bounds a memory store when NewMemoryStore gets maxKeys <= 0.
const DefaultMaxKeys = 100_000

// NewMemoryStore returns an in-process store holding at most maxKeys keys
// (DefaultMaxKeys when <= 0); past that, the key whose last failure is the
// oldest is evicted.
func NewMemoryStore(maxKeys int) PenaltyStore {
	return NewMemoryStoreClock(maxKeys, time.Now)
}

// NewMemoryStoreClock is NewMemoryStore with a clock, for tests.
func NewMemoryStoreClock(maxKeys int, now func() time.Time) PenaltyStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &memoryStore{max: maxKeys, now: now, keys: map[string]*list.Element{}, lru: list.New()}
}

// memoryStore keeps entries in a list ordered by last failure, oldest at
// the front: eviction and expiry look at the front only.
type memoryStore struct {
	max int
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // of *memEntry
	lru  *list.List
}

type memEntry struct {
	key      string
	failures int64
	expires  time.Time
}

func (m *memoryStore) Fail(_ context.Context, key string, forget time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expireLocked(now)
	if el, ok := m.keys[key]; ok {
		e := el.Value.(*memEntry)
		if !now.Before(e.expires) { // forgotten, though expireLocked had not reached it
			e.failures = 0
		}
		e.failures++
		e.expires = now.Add(forget)
		m.lru.MoveToBack(el)
		return e.failures, nil
	}
	for m.lru.Len() >= m.max {
		m.removeLocked(m.lru.Front())
	}
	m.keys[key] = m.lru.PushBack(&memEntry{key: key, failures: 1, expires: now.Add(forget)})
	return 1, nil
}

func (m *memoryStore) Failures(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.keys[key]
	if !ok {
		return 0, nil
	}
	e := el.Value.(*memEntry)
	if !m.now().Before(e.expires) {
		m.removeLocked(el)
		return 0, nil
	}
	return e.failures, nil
}

func (m *memoryStore) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.keys[key]; ok {
		m.removeLocked(el)
	}
	return nil
}

// expireLocked drops expired entries from the front. Entries are ordered
// by last failure but may have different forget durations, so this is a
// best effort; Failures checks expiry exactly.
func (m *memoryStore) expireLocked(now time.Time) {
	for i := 0; i < 64; i++ {
		el := m.lru.Front()
		if el == nil || now.Before(el.Value.(*memEntry).expires) {
			return
		}
		m.removeLocked(el)
	}
}

func (m *memoryStore) removeLocked(el *list.Element) {
	delete(m.keys, el.Value.(*memEntry).key)
	m.lru.Remove(el)
}

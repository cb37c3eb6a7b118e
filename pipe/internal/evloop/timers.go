package evloop

// timerHeap is a min-heap of timed items ordered by due. Each item sits in
// it at most once and remembers its index, so that moving a deadline is
// O(log n) and moving it later can be deferred: the loop checks the real
// deadline when the entry comes due and re-files it if it moved.
type timerHeap[T any] struct {
	items []T
	due   func(T) int64
	setIx func(T, int)
}

func (h *timerHeap[T]) len() int { return len(h.items) }

func (h *timerHeap[T]) peek() T { return h.items[0] }

func (h *timerHeap[T]) push(x T) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	h.setIx(x, i)
	h.up(i)
}

// fix restores order after item i's due changed.
func (h *timerHeap[T]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// remove takes item i out of the heap.
func (h *timerHeap[T]) remove(i int) {
	n := len(h.items) - 1
	x := h.items[i]
	if i != n {
		h.swap(i, n)
	}
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	h.setIx(x, -1)
	if i != n {
		h.fix(i)
	}
	if cap(h.items) > 64 && len(h.items) < cap(h.items)/4 {
		h.items = append([]T(nil), h.items...)
	}
}

func (h *timerHeap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.setIx(h.items[i], i)
	h.setIx(h.items[j], j)
}

func (h *timerHeap[T]) less(i, j int) bool { return h.due(h.items[i]) < h.due(h.items[j]) }

func (h *timerHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *timerHeap[T]) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > start
}

package benchproc

import (
	"fmt"
	"sort"
)

// Spread is a median with the smallest and largest value.
type Spread struct{ Med, Lo, Hi float64 }

// SpreadOf is v's spread; the median of an even count is the mean of the
// two middle values. No values: zero.
func SpreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{med, s[0], s[len(s)-1]}
}

// Format writes s as "median (lo-hi)" with prec decimals.
func (s Spread) Format(prec int) string {
	return fmt.Sprintf("%.*f (%.*f-%.*f)", prec, s.Med, prec, s.Lo, prec, s.Hi)
}

// Ratios divides a by b element by element (a round's figure by the same
// round's), as far as the shorter goes.
func Ratios(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] / b[i]
	}
	return out
}

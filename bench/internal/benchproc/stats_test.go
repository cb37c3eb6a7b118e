package benchproc

import (
	"reflect"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{2}, Spread{2, 2, 2}},
		{[]float64{3, 1, 2}, Spread{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, Spread{2.5, 1, 4}},
	} {
		in := append([]float64(nil), c.in...)
		if got := SpreadOf(c.in); got != c.want {
			t.Errorf("SpreadOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
		if !reflect.DeepEqual(in, c.in) {
			t.Errorf("SpreadOf changed its input to %v", c.in)
		}
	}
	if got := (Spread{1234.5, 1000, 1500.25}).Format(1); got != "1234.5 (1000.0-1500.2)" {
		t.Errorf("Format(1) = %q", got)
	}
}

func TestRatios(t *testing.T) {
	if got := Ratios([]float64{2, 9, 5}, []float64{1, 3}); !reflect.DeepEqual(got, []float64{2, 3}) {
		t.Errorf("Ratios = %v, want [2 3]", got)
	}
}

package benchproc

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// closer counts its Close calls and returns err from them.
type closer struct {
	closed *int
	err    error
}

func (c closer) Close() error {
	*c.closed++
	return c.err
}

func TestRotate(t *testing.T) {
	items := []string{"a", "b", "c"}
	for r, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := Rotate(items, r); !reflect.DeepEqual(got, want) {
			t.Errorf("Rotate(%v, %d) = %v, want %v", items, r, got, want)
		}
	}
	if got := Rotate([]int(nil), 3); len(got) != 0 {
		t.Errorf("Rotate(nil) = %v", got)
	}
}

func TestRate(t *testing.T) {
	var calls []int
	rate, err := Rate(3, func(i int) error { calls = append(calls, i); return nil })
	if err != nil || rate <= 0 || !reflect.DeepEqual(calls, []int{0, 1, 2}) {
		t.Errorf("Rate = %v, %v after calls %v", rate, err, calls)
	}
	boom := errors.New("boom")
	calls = nil
	if _, err := Rate(3, func(i int) error { calls = append(calls, i); return boom }); err != boom || len(calls) != 1 {
		t.Errorf("Rate with a failing call: %v after calls %v", err, calls)
	}
}

func TestLoginRate(t *testing.T) {
	closed := 0
	if _, err := LoginRate(4, func() (io.Closer, error) { return closer{&closed, nil}, nil }); err != nil || closed != 4 {
		t.Errorf("LoginRate: %v, %d logouts; want 4", err, closed)
	}
	n := 0
	_, err := LoginRate(4, func() (io.Closer, error) {
		if n++; n == 3 {
			return nil, errors.New("refused")
		}
		return closer{&closed, nil}, nil
	})
	if err == nil || err.Error() != "login 2: refused" {
		t.Errorf("LoginRate with a failing login: %v", err)
	}
	_, err = LoginRate(4, func() (io.Closer, error) { return closer{&closed, errors.New("EOF")}, nil })
	if err == nil || err.Error() != "logout 0: EOF" {
		t.Errorf("LoginRate with a failing logout: %v", err)
	}
}

// TestIdleRSSClosesOnError: a failing open ends IdleRSS with an error
// naming the session, and the sessions opened are closed.
func TestIdleRSSClosesOnError(t *testing.T) {
	closed, n := 0, 0
	_, err := IdleRSS(1, 5, func() (io.Closer, error) {
		if n++; n == 3 {
			return nil, errors.New("refused")
		}
		return closer{&closed, nil}, nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "session 2: refused") {
		t.Errorf("IdleRSS: %v; want session 2: refused", err)
	}
	if closed != 2 {
		t.Errorf("%d sessions closed, want 2", closed)
	}
}

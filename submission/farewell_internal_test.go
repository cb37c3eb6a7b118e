package submission

import "testing"

func TestFarewell(t *testing.T) {
	got := string(protocol{host: "mx.a.test"}.Farewell("Account moved"))
	if want := "421 4.3.2 mx.a.test Account moved\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

package sieve

import "testing"

func TestFarewell(t *testing.T) {
	got := string(protocol{}.Farewell("Account moved\r\nX"))
	if want := "BYE (TRYLATER) \"Account moved  X\"\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

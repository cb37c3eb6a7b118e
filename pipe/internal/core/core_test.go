package core

import "testing"

// TestLabels: every enum value has its own label; the labels are part of
// the API (logs, metric label values) and must not change by accident.
func TestLabels(t *testing.T) {
	fallbacks := []string{"system", "conn-type", "loop-error", "tls-on-goroutines", "tls-go-release", "tls-version", "tls-suite", "tls-buffered", "tls-state"}
	if len(fallbacks) != int(NumFallbacks) {
		t.Fatalf("%d fallback labels listed, NumFallbacks is %d", len(fallbacks), NumFallbacks)
	}
	for i, want := range fallbacks {
		if got := Fallback(i).String(); got != want {
			t.Errorf("Fallback(%d) = %q, want %q", i, got, want)
		}
	}
	reasons := []string{"eof", "reset", "idle-timeout", "lifetime", "half-close-linger", "shutdown", "error", "stopped"}
	for i, want := range reasons {
		if got := Reason(i).String(); got != want {
			t.Errorf("Reason(%d) = %q, want %q", i, got, want)
		}
	}
	for i, want := range []string{"none", "a", "b"} {
		if got := Side(i).String(); got != want {
			t.Errorf("Side(%d) = %q, want %q", i, got, want)
		}
	}
	if NumFallbacks.String() != "unknown" || Reason(len(reasons)).String() != "unknown" {
		t.Error("out-of-range values must say unknown")
	}
}

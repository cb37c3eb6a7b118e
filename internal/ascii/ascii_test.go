package ascii_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/ascii"
)

func TestCase(t *testing.T) {
	for _, tc := range []struct{ in, lower, upper string }{
		{"", "", ""},
		{"Kate@Example.ORG", "kate@example.org", "KATE@EXAMPLE.ORG"},
		{"kate", "kate", "KATE"},
		{"@[]`{}09", "@[]`{}09", "@[]`{}09"},
		{"\u212Aate", "\u212Aate", "\u212AATE"},
		{"pla\u0131n", "pla\u0131n", "PLA\u0131N"},
		{"\u017fcram", "\u017fcram", "\u017fCRAM"},
		{"J\u00d6RG", "j\u00d6rg", "J\u00d6RG"},
		{"\xffA\xfe", "\xffa\xfe", "\xffA\xfe"},
	} {
		if got := ascii.Lower(tc.in); got != tc.lower {
			t.Errorf("Lower(%q) = %q, want %q", tc.in, got, tc.lower)
		}
		if got := ascii.Upper(tc.in); got != tc.upper {
			t.Errorf("Upper(%q) = %q, want %q", tc.in, got, tc.upper)
		}
	}
}

// FuzzCase: ASCII letters change case as strings.ToLower/ToUpper would
// change them, and no other byte changes.
func FuzzCase(f *testing.F) {
	for _, s := range []string{"Kate@Example.ORG", "\u212Aate", "pla\u0131n", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lower, upper := ascii.Lower(s), ascii.Upper(s)
		if len(lower) != len(s) || len(upper) != len(s) {
			t.Fatalf("length changed: %q -> %q, %q", s, lower, upper)
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x80 {
				if want := strings.ToLower(string(c)); lower[i] != want[0] {
					t.Fatalf("Lower(%q)[%d] = %q, want %q", s, i, lower[i], want)
				}
				if want := strings.ToUpper(string(c)); upper[i] != want[0] {
					t.Fatalf("Upper(%q)[%d] = %q, want %q", s, i, upper[i], want)
				}
			} else if lower[i] != c || upper[i] != c {
				t.Fatalf("byte %d (%#x) of %q changed", i, c, s)
			}
		}
	})
}

func ExampleLower() {
	fmt.Println(ascii.Lower("Kate@Example.ORG"), ascii.Lower("\u212Aate") == "kate")
	// Output: kate@example.org false
}

func TestDigits(t *testing.T) {
	for in, want := range map[string]bool{
		"0": true, "1234567890": true, "99999999999999999999999": true,
		"": false, "+1": false, "-1": false, "1 ": false, "1a": false, "\u0661": false, // Arabic-Indic one
	} {
		if got := ascii.Digits([]byte(in)); got != want {
			t.Errorf("Digits(%q) = %v, want %v", in, got, want)
		}
	}
}

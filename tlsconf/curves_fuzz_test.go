package tlsconf

import (
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCurves: a name is accepted only as one of a group's names
// (any case) and gives that group, whose every name, in any case, gives it
// back; a list gives one group per name, in order; anything else is
// refused quoting the bad name and listing the known ones.
func FuzzParseCurves(f *testing.F) {
	for _, s := range []string{
		"", "x25519,P-256", "prime256v1,P-384", "X25519MLKEM768,X25519",
		"SecP256r1MLKEM768,secp384r1,SECP521R1", "X25519,brainpool", "X25519,", ",", " X25519", "p-256,p-256",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		ids, err := parseCurves(list)
		if list == "" {
			if ids != nil || err != nil {
				t.Fatalf("empty list: %v, %v", ids, err)
			}
			return
		}
		names := strings.Split(list, ",")
		if err != nil {
			bad := ""
			for _, n := range names {
				if _, perr := ParseCurve(n); perr != nil {
					bad = n
					break
				}
			}
			e := err.Error()
			if ids != nil || !strings.HasPrefix(e, "tls curves: unknown key exchange group "+strconv.Quote(bad)+" (want one of ") {
				t.Fatalf("%q: %v, %v", list, ids, err)
			}
			for _, c := range curveNames {
				if !strings.Contains(e, c.names[0]) {
					t.Fatalf("%q: error %q does not list %s", list, e, c.names[0])
				}
			}
			return
		}
		if len(ids) != len(names) {
			t.Fatalf("%q: %d groups", list, len(ids))
		}
		for i, n := range names {
			checkCurve(t, n, ids[i])
		}
	})
}

// checkCurve checks that name, accepted as id, is one of id's names and
// that each of those names gives id in upper and lower case.
func checkCurve(t *testing.T, name string, id tls.CurveID) {
	t.Helper()
	for _, c := range curveNames {
		if c.id != id {
			continue
		}
		named := false
		for _, n := range c.names {
			named = named || strings.EqualFold(n, name)
			for _, v := range []string{n, strings.ToLower(n), strings.ToUpper(n)} {
				if got, err := ParseCurve(v); err != nil || got != id {
					t.Fatalf("%q: %v, %v; want %v", v, got, err, id)
				}
			}
		}
		if !named {
			t.Fatalf("%q accepted as %v, not one of its names %q", name, id, c.names)
		}
		return
	}
	t.Fatalf("%q accepted as %v, not a known group", name, id)
}

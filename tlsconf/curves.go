package tlsconf

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// curveNames are the key exchange groups a server may allow, by the names
// OpenSSL (Dovecot's ssl_curve_list, nginx's ssl_ecdh_curve, HAProxy's
// curves) and the IANA registry give them; matched without regard to case.
var curveNames = []struct {
	names []string
	id    tls.CurveID
}{
	{[]string{"X25519MLKEM768"}, tls.X25519MLKEM768},
	{[]string{"SecP256r1MLKEM768"}, tls.SecP256r1MLKEM768},
	{[]string{"SecP384r1MLKEM1024"}, tls.SecP384r1MLKEM1024},
	{[]string{"X25519"}, tls.X25519},
	{[]string{"P-256", "prime256v1", "secp256r1"}, tls.CurveP256},
	{[]string{"P-384", "secp384r1"}, tls.CurveP384},
	{[]string{"P-521", "secp521r1"}, tls.CurveP521},
}

// ParseCurve returns the key exchange group of name ("X25519MLKEM768",
// "X25519", "P-256" or "prime256v1", ...), or an error listing the names.
func ParseCurve(name string) (tls.CurveID, error) {
	var known []string
	for _, c := range curveNames {
		for _, n := range c.names {
			if strings.EqualFold(n, name) {
				return c.id, nil
			}
		}
		known = append(known, c.names[0])
	}
	return 0, fmt.Errorf("unknown key exchange group %q (want one of %s)", name, strings.Join(known, ", "))
}

// parseCurves is ParseCurve for ServerFiles.Curves, names joined by
// commas; "" is nil (Go's defaults).
func parseCurves(list string) ([]tls.CurveID, error) {
	if list == "" {
		return nil, nil
	}
	var ids []tls.CurveID
	for _, n := range strings.Split(list, ",") {
		id, err := ParseCurve(n)
		if err != nil {
			return nil, fmt.Errorf("tls curves: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Package ascii changes the case of protocol names and account names by
// ASCII rules only, as mail servers do (Dovecot's %Lu, RFC 4422 mechanism
// names, the routing sources' case-insensitive keys). strings.ToLower and
// strings.ToUpper apply Unicode case mapping instead, which makes ASCII
// letters of other characters: the Kelvin sign "K" (U+212A) lowers to
// "k", the dotless "ı" (U+0131) and the long "ſ" (U+017F) upper to "I"
// and "S", so "\u212Aate" would be read as the account "kate".
//
//	ascii.Lower("Kate@Example.ORG") // "kate@example.org"
//	ascii.Lower("\u212Aate")        // unchanged: not an ASCII letter
//	ascii.Upper("plain")            // "PLAIN"
//
// Bytes outside A–Z and a–z, valid UTF-8 or not, are left as they are.
// Digits tells an ASCII decimal number, likewise without Unicode's digits.
package ascii

// Lower returns s with A–Z turned into a–z.
func Lower(s string) string { return mapLetters(s, 'A', 'Z', 'a'-'A') }

// Upper returns s with a–z turned into A–Z.
func Upper(s string) string { return mapLetters(s, 'a', 'z', 'A'-'a') }

// Digits reports whether b is one or more of 0–9 (the number of IMAP and
// ManageSieve literals, which strconv would take with a sign).
func Digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// mapLetters adds shift to every byte of s in [lo, hi]; s itself when
// there is none.
func mapLetters(s string, lo, hi byte, shift int) string {
	i := 0
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if lo <= b[i] && b[i] <= hi {
			b[i] = byte(int(b[i]) + shift)
		}
	}
	return string(b)
}

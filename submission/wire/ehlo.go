package wire

import "strings"

// Extension is one service extension of an EHLO reply (RFC 5321 section
// 4.1.1.1): a keyword and its parameters, such as "AUTH" with "PLAIN",
// "LOGIN".
type Extension struct {
	Keyword string // upper case
	Params  []string
}

// Extensions are the extensions of an EHLO reply, in the server's order.
type Extensions []Extension

// Extensions parses the lines after the first of a 250 reply to EHLO:
// ehlo-line = ehlo-keyword *( SP ehlo-param ). Lines whose keyword breaks
// the grammar ((ALPHA / DIGIT) *(ALPHA / DIGIT / "-")), such as the old
// "AUTH=PLAIN", are left out. Any other reply has none.
func (r *Reply) Extensions() Extensions {
	if r.Code != 250 || len(r.Lines) < 2 {
		return nil
	}
	var exts Extensions
	for _, l := range r.Lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 || !validKeyword(f[0]) {
			continue
		}
		exts = append(exts, Extension{Keyword: strings.ToUpper(f[0]), Params: f[1:]})
	}
	return exts
}

func validKeyword(k string) bool {
	if k == "" || !isAlpha(k[0]) && !isDigit(k[0]) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// Has reports whether exts holds keyword (case-insensitive).
func (exts Extensions) Has(keyword string) bool {
	_, ok := exts.Params(keyword)
	return ok
}

// Params returns the parameters of keyword, and whether it is there.
func (exts Extensions) Params(keyword string) ([]string, bool) {
	for _, e := range exts {
		if strings.EqualFold(e.Keyword, keyword) {
			return e.Params, true
		}
	}
	return nil, false
}

// EHLOReply returns the 250 reply to EHLO: greeting first ("domain
// text"), then one line per extension.
func (exts Extensions) EHLOReply(greeting string) *Reply {
	lines := []string{greeting}
	for _, e := range exts {
		lines = append(lines, strings.Join(append([]string{e.Keyword}, e.Params...), " "))
	}
	return &Reply{Code: 250, Lines: lines}
}

package wire

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzParseCapa: a backend's CAPA response gives one capability per line
// that is not blank, named in upper case by its first word, with the
// other words as parameters, none empty or holding white space; Has and
// Args find each by name in any case (the first of a repeated name);
// written again with Lines, and sent and read back through ReadMultiLine,
// it parses the same (bytes RFC 2449 leaves out, such as NUL, are kept
// in words: harmless, only fixed names are looked up).
func FuzzParseCapa(f *testing.F) {
	for _, s := range []string{
		"+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION Dovecot\r\n.\r\n",
		"+OK\r\nuser\r\nsasl  plain\t login \r\n\r\n..hidden\r\nSASL XOAUTH2\r\nXCLIENT ADDR PORT SESSION TTL\r\n.\r\n",
		"+OK\r\n \r\n.\r\n",
		"+OK\n\x00\nSASL\x00 PLAIN\n.\n",
		"+OK\r\nEXPIRE NEVER\r\nLOGIN-DELAY 900\r\nſasl \u00a0x\u0085\r\n.\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := ReadMultiLine(bufio.NewReader(bytes.NewReader(in)), 512, 64)
		if err != nil || resp.Status != StatusOK {
			return
		}
		caps := ParseCapa(resp.Lines)
		var words [][]string
		for _, l := range resp.Lines {
			if w := strings.Fields(l); len(w) > 0 {
				words = append(words, w)
			}
		}
		if len(caps) != len(words) {
			t.Fatalf("%q: %d capabilities from %d lines with words", resp.Lines, len(caps), len(words))
		}
		for i, c := range caps {
			if c.Name != strings.ToUpper(words[i][0]) || !slices.Equal(c.Args, words[i][1:]) {
				t.Fatalf("%q: capability %d is %+v", resp.Lines, i, c)
			}
			for _, w := range append([]string{c.Name}, c.Args...) {
				if w == "" || len(strings.Fields(w)) != 1 {
					t.Fatalf("%q: word %q in %+v", resp.Lines, w, c)
				}
			}
			first := slices.IndexFunc(caps, func(d Capability) bool { return strings.EqualFold(d.Name, c.Name) })
			for _, name := range []string{c.Name, strings.ToLower(c.Name), words[i][0]} {
				args, ok := caps.Args(name)
				if !ok || !caps.Has(name) || !slices.Equal(args, caps[first].Args) {
					t.Fatalf("%q: Args(%q) = %q, %v; want %q", resp.Lines, name, args, ok, caps[first].Args)
				}
			}
		}
		same := func(a, b Capability) bool { return a.Name == b.Name && slices.Equal(a.Args, b.Args) }
		if got := ParseCapa(caps.Lines()); !slices.EqualFunc(got, caps, same) {
			t.Fatalf("%+v written as %q parsed as %+v", caps, caps.Lines(), got)
		}
		if bytes.IndexByte(in, 0) >= 0 {
			return // Append writes NUL as a space: another word boundary
		}
		again := Response{Status: StatusOK, Text: "again", Lines: caps.Lines()}
		back, err := ReadMultiLine(bufio.NewReader(bytes.NewReader(again.Append(nil))), 1<<20, len(caps)+1)
		if err != nil {
			t.Fatalf("%+v written as %q: %v", caps, again.Append(nil), err)
		}
		if got := ParseCapa(back.Lines); !slices.EqualFunc(got, caps, same) {
			t.Fatalf("%+v sent as %q read back as %+v", caps, again.Append(nil), got)
		}
	})
}

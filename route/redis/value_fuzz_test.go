package redis

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// FuzzParseValue: a stored value gives one backend per word, in order,
// each what route.ParseBackend gives for the word (FuzzParseBackend
// fuzzes that), and the backends written back as a value read back the
// same; a value without a word is refused as empty, one with a bad word
// with ParseBackend's error, which quotes it.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{
		"imap://127.0.0.1:14301",
		"  imaps://127.0.0.1:9931   imaps://127.0.0.1:9932?server_name=m.a.test\n",
		"imaps://h1 pop3s://h1 sieve+starttls://h1 submission+starttls://h2:1587",
		"imap://127.0.0.1:1 gopher://x",
		"pool:shared\timap://[::1]:143?proxy=v1",
		"  ",
		"",
		"imap://h:1\u00a0imap://h:2\u0085pool:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, val string) {
		if len(val) > 512 { // a few URLs tell as much; long inputs are slow to minimize
			return
		}
		got, err := parseValue(val)
		words := strings.Fields(val)
		if len(words) == 0 {
			if err == nil || err.Error() != "empty value (want one or more backend URLs)" {
				t.Fatalf("%q: %v, %v", val, got, err)
			}
			return
		}
		var want []route.Backend
		bad := ""
		for _, w := range words {
			b, err := route.ParseBackend(w)
			if err != nil {
				bad = w
				break
			}
			want = append(want, b)
		}
		if bad != "" {
			// ParseBackend's reason may vary: it names the first bad query
			// parameter it meets, in map order.
			if err == nil || !strings.HasPrefix(err.Error(), "backend "+strconv.Quote(bad)+": ") || got != nil {
				t.Fatalf("%q: %v, %v; want the error of %q", val, got, err, bad)
			}
			return
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%q: %v, %v; want %v", val, got, err, want)
		}
		written := make([]string, len(got))
		for i, b := range got {
			written[i] = b.String()
		}
		again, err := parseValue(strings.Join(written, " "))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("%q parsed as %v, written as %q read back as %v, %v", val, got, written, again, err)
		}
	})
}

package configtest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configerr"
)

// CheckProblems asserts the rule of every error a loader gives for file
// (its bytes data): each problem (err, or each of errors.Join's) is a
// *configerr.Error naming file and a line from 1 to the file's last,
// except when no line exists:
//   - yaml.v3 refuses the stream itself: a syntax error (Field "", the
//     library's text, which says "line N" where the library knows it), or
//     "document contains excessive aliasing", a limit on the whole file;
//   - the field is not written in the file ("forwards: missing"): lineOf
//     (Doc.Line of the file decoded, nil when it does not decode) is 0
//     for it and each of its parents.
//
// A nil err passes.
func CheckProblems(t testing.TB, file string, data []byte, err error, lineOf func(string) int) {
	t.Helper()
	if err == nil {
		return
	}
	if !strings.HasPrefix(err.Error(), file) {
		t.Fatalf("error does not start with the file %s:\n%v", file, err)
	}
	max := MaxLine(data)
	for _, p := range Problems(err) {
		ce, ok := p.(*configerr.Error)
		switch {
		case !ok:
			t.Fatalf("problem %q is a %T, not a *configerr.Error", p, p)
		case ce.File != file:
			t.Fatalf("problem %q names file %q, want %q", p, ce.File, file)
		case ce.Line < 0 || ce.Line > max:
			t.Fatalf("problem %q: line %d, the file has at most %d", p, ce.Line, max)
		case ce.Line > 0:
		case ce.Field == "" && YAMLRefuses(data):
		case ce.Field == "" && strings.Contains(ce.Err.Error(), "excessive aliasing"):
		case lineOf != nil && lineOf(ce.Field) == 0:
		default:
			t.Fatalf("problem without a line: %q", p)
		}
	}
}

// Problems flattens errors.Join.
func Problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// YAMLRefuses reports whether yaml.v3 fails to parse a document of data.
func YAMLRefuses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range len(data) + 2 {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			return true
		}
	}
	return false
}

// MaxLine bounds the line numbers of data: yaml counts CR, LF, CRLF, NEL,
// LS and PS as line breaks.
func MaxLine(data []byte) int {
	n := 2
	for _, b := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += bytes.Count(data, []byte(b))
	}
	return n
}

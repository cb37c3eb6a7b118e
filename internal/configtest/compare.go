package configtest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// CheckSecretless fails t if err shows the fixture's secret (unless the
// file itself holds it). A nil err passes.
func CheckSecretless(t testing.TB, data []byte, err error) {
	t.Helper()
	if err != nil && !bytes.Contains(data, []byte(Secret)) && strings.Contains(err.Error(), Secret) {
		t.Fatalf("a password file's secret in the error: %v", err)
	}
}

// SameErr fails t unless two loads of one file failed alike: both
// succeeded, or both failed with the same text.
func SameErr(t testing.TB, err, again error) {
	t.Helper()
	if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
		t.Fatalf("loaded twice: %v\nthen: %v", err, again)
	}
}

// SameOutcome fails t unless two loads of one file agree: the same error
// text (SameErr), or configs deeply equal (NaN, not equal to itself,
// compared by its YAML form).
func SameOutcome(t testing.TB, err, err2 error, c, c2 any) {
	t.Helper()
	SameErr(t, err, err2)
	if err != nil || reflect.DeepEqual(c, c2) {
		return
	}
	m, _ := yaml.Marshal(c)
	m2, _ := yaml.Marshal(c2)
	if !bytes.Equal(m, m2) || !bytes.Contains(m, []byte(".nan")) {
		t.Fatalf("loaded twice: %+v\nthen: %+v", c, c2)
	}
}

package configtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/configerr"
)

func TestMaxLine(t *testing.T) {
	for data, want := range map[string]int{"": 2, "a\n": 3, "a\r\nb\n": 5, "a\u2028b\u0085c": 4} {
		if got := MaxLine([]byte(data)); got != want {
			t.Errorf("MaxLine(%q) = %d, want %d", data, got, want)
		}
	}
}

func TestYAMLRefuses(t *testing.T) {
	for data, want := range map[string]bool{"": false, "a: b\n---\nc: d\n": false, "a: [\n": true, "a: b\n---\n{\n": true} {
		if got := YAMLRefuses([]byte(data)); got != want {
			t.Errorf("YAMLRefuses(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestMayNameKernelFile(t *testing.T) {
	for data, want := range map[string]bool{
		"cert: a.crt\n": false, "cert: /dev/zero\n": false, "cert: /proc/kmsg\n": true, `cert: "a\nb"` + "\n": false,
		`cert: "\x2fproc"` + "\n": true, "cert: !!binary L2Rldg==\n": true, `a: "\`: false,
	} {
		if got := MayNameKernelFile([]byte(data)); got != want {
			t.Errorf("MayNameKernelFile(%q) = %v, want %v", data, got, want)
		}
	}
}

func TestProblems(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := Problems(errors.Join(a, errors.Join(b, c)))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("Problems = %v", got)
	}
}

// TestCheckProblems: the rule passes errors that keep it and fails those
// that break it.
func TestCheckProblems(t *testing.T) {
	data := []byte("a: 1\nb: 2\n")
	at := func(line int, field string) error {
		return &configerr.Error{File: "f.yaml", Line: line, Field: field, Err: errors.New("bad")}
	}
	missing := func(field string) int {
		if field == "c" {
			return 0
		}
		return 1
	}
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"nil", nil, true},
		{"lines", errors.Join(at(1, "a"), at(2, "b")), true},
		{"missing field", at(0, "c"), true},
		{"no line", at(0, "a"), false},
		{"line past the end", at(9, "a"), false},
		{"not a configerr", errors.New("f.yaml: bad"), false},
		{"other file", &configerr.Error{File: "f.yaml.x", Line: 1, Err: errors.New("bad")}, false},
	} {
		rec := &recorder{TB: t}
		func() {
			defer func() { _ = recover() }()
			CheckProblems(rec, "f.yaml", data, tc.err, missing)
		}()
		if rec.failed == tc.ok {
			t.Errorf("%s: failed %v, want %v (%s)", tc.name, rec.failed, !tc.ok, rec.msg)
		}
	}
}

// recorder is a testing.TB whose Fatalf records the failure and stops
// the check (by panicking, which the test recovers).
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
	panic("fatal")
}

func TestFixture(t *testing.T) {
	dir := Dir(t, Fixture(t))
	b, err := os.ReadFile(filepath.Join(dir, "pw"))
	if err != nil || strings.TrimSpace(string(b)) != Secret {
		t.Fatalf("pw: %q, %v", b, err)
	}
	for _, name := range []string{"server.crt", "server.key", "ca.crt", "backend-ca.crt", "client.crt", "client.key", "ticket.keys", "empty", "routes.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func TestDocExamples(t *testing.T) {
	ex := DocExamples(t, "../..")
	if len(ex) == 0 {
		t.Fatal("no examples")
	}
	if got := FixturePaths("cert: /etc/pipegate/site.crt\nkey: /etc/pipegate/site.key\nca: /path/ca.pem\nx: /etc/pipegate/other\n"); got != "cert: server.crt\nkey: server.key\nca: ca.crt\nx: /etc/pipegate/other\n" {
		t.Fatalf("FixturePaths: %q", got)
	}
}

func TestGoroutines(t *testing.T) {
	before := Goroutines()
	done, exited := make(chan struct{}), make(chan struct{})
	go blockUntil(done, exited)
	defer func() { close(done); <-exited }()
	after := Goroutines()
	if len(after) != len(before)+1 {
		t.Fatalf("%d goroutines, then %d", len(before), len(after))
	}
	if got := Goroutines("github.com/pipegate/pipegate/internal/configtest."); len(got) > len(before) {
		t.Fatalf("ignored goroutines listed: %v", got)
	}
}

// blockUntil waits for done, then closes exited.
func blockUntil(done, exited chan struct{}) {
	<-done
	close(exited)
}

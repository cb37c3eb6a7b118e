package configtest

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// MayNameKernelFile reports a file that could name a kernel file as a
// certificate: devices and named pipes are refused by the loaders
// (internal/cfgfile), but a /proc or /sys file is regular and some, such
// as /proc/kmsg, wait on read. The fuzzers skip such files. Paths can
// also be spelt with escapes, line folds and !!binary, so those are
// skipped too.
func MayNameKernelFile(data []byte) bool {
	for _, s := range []string{"proc", "sys", "binary"} {
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	for i := bytes.IndexByte(data, '\\'); i >= 0; i = bytes.IndexByte(data, '\\') {
		if i+1 < len(data) && !strings.ContainsRune(`"\nrt0abefv`, rune(data[i+1])) {
			return true
		}
		data = data[min(i+2, len(data)):]
	}
	return false
}

// SkipKernelFile skips t when data may name a kernel file (MayNameKernelFile).
func SkipKernelFile(t testing.TB, data []byte) {
	t.Helper()
	if MayNameKernelFile(data) {
		t.Skip("the file may name a kernel file")
	}
}

// AddSeeds adds the files of each list to f's corpus.
func AddSeeds(f *testing.F, lists ...[]string) {
	for _, list := range lists {
		for _, s := range list {
			f.Add([]byte(s))
		}
	}
}

// AddDocExamples adds the docs' examples (DocExamples of root) to f's
// corpus, and each example as each of variants rewrites it.
func AddDocExamples(f *testing.F, root string, variants ...func(string) string) {
	for _, s := range DocExamples(f, root) {
		f.Add(s)
		for _, v := range variants {
			f.Add([]byte(v(string(s))))
		}
	}
}

// DocExamples are the yaml blocks of the docs (root/docs/*.md and
// root/README.md): the repository's example configs.
func DocExamples(t testing.TB, root string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
			text, _, _ := strings.Cut(block, "```")
			out = append(out, []byte(text))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no yaml examples in %s", root)
	}
	return out
}

// docPaths are the docs' absolute file names.
var docPaths = regexp.MustCompile(`/(etc/pipegate|path)/[A-Za-z0-9._-]+`)

// FixturePaths turns the docs' file names (/etc/pipegate/NAME,
// /path/NAME) in s into the fixture's, by their kind: a CA, a key, a
// certificate, ticket keys, a password, a routes file.
func FixturePaths(s string) string {
	return docPaths.ReplaceAllStringFunc(s, func(p string) string {
		switch name := path.Base(p); {
		case strings.HasSuffix(name, "ca.crt"), strings.HasSuffix(name, "ca.pem"):
			return "ca.crt"
		case strings.HasSuffix(name, ".key"), name == "key.pem":
			return "server.key"
		case strings.HasSuffix(name, ".crt"), strings.HasSuffix(name, ".pem"):
			return "server.crt"
		case strings.HasPrefix(name, "ticket"):
			return "ticket.keys"
		case strings.HasSuffix(name, ".pass"), strings.HasSuffix(name, ".pw"):
			return "pw"
		case name == "routes.yaml":
			return "routes.yaml"
		}
		return p
	})
}

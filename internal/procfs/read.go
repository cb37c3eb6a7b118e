package procfs

import (
	"fmt"
	"os"
)

// readFile reads the file at path and parses its text; a parse error
// names the file too.
func readFile[T any](path string, parse func(string) (T, error)) (T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, err // a *fs.PathError: names the file
	}
	v, err := parse(string(b))
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

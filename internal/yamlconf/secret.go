package yamlconf

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecret reads a one-secret file (password_file and the like): its
// content without the line ending. An empty secret is an error.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: empty file (want the secret on its first line)", path)
	}
	return s, nil
}

// Secret reads the secret file at path (relative to the config file's
// folder), given as field. Errors name the file, line and field, never
// the secret.
func (d *Doc) Secret(field, path string) (string, error) {
	s, err := ReadSecret(d.Path(path))
	if err != nil {
		return "", d.Error(field, err)
	}
	return s, nil
}

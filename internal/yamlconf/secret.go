package yamlconf

import (
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

// ReadSecret reads a secret file (password_file and the like): its first
// line, without the line ending. An empty secret is an error; errors name
// the file, never the secret.
func ReadSecret(path string) (string, error) {
	b, err := cfgfile.Read(path, cfgfile.Small)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	s := strings.TrimSuffix(line, "\r")
	if s == "" {
		return "", fmt.Errorf("%s: empty (want the secret on its first line)", path)
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

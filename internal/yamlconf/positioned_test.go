package yamlconf

import (
	"errors"
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

// picky decodes itself and refuses any key but "ok", saying where.
type picky struct{}

type pickyError struct {
	line int
	key  string
}

func (e *pickyError) Error() string                      { return fmt.Sprintf("line %d: bad key %q", e.line, e.key) }
func (e *pickyError) Unwrap() error                      { return errors.New("not ok") }
func (e *pickyError) Position() (line int, field string) { return e.line, "inner." + e.key }

func (p *picky) UnmarshalYAML(n *yaml.Node) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value != "ok" {
			return &pickyError{line: k.Line, key: k.Value}
		}
	}
	return nil
}

func TestPositionedError(t *testing.T) {
	var v struct {
		P []picky `yaml:"p"`
	}
	_, err := Decode("f.yaml", []byte("p:\n  - ok: 1\n  - ok: 2\n    nope: 3\n"), &v)
	if err == nil || err.Error() != "f.yaml:4: p[1].inner.nope: not ok" {
		t.Fatalf("err %v", err)
	}
}

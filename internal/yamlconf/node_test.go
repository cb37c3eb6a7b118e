package yamlconf

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// entry decodes itself through DecodeNode, as route_sources entries do.
type entry struct {
	Name    string   `yaml:"name"`
	Timeout Duration `yaml:"timeout"`
	Inner   *inner   `yaml:"inner"`
}

type inner struct {
	Size int `yaml:"size"`
}

func (e *entry) UnmarshalYAML(n *yaml.Node) error {
	type plain entry
	return DecodeNode(n, (*plain)(e))
}

func (i *inner) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return NodeErrorf(n, "want a mapping")
	}
	type plain inner
	return DecodeNode(n, (*plain)(i))
}

func TestDecodeNode(t *testing.T) {
	var v struct {
		E []entry `yaml:"e"`
	}
	_, err := Decode("f.yaml", []byte("e:\n  - name: a\n    nmae: b\n    timeout: soon\n  - inner:\n      sise: 1\n  - inner: x\n"), &v)
	want := []string{
		"f.yaml:3: e[0].nmae: unknown field (want one of: inner, name, timeout)",
		"f.yaml:4: e[0].timeout: invalid duration \"soon\"",
		"f.yaml:6: e[1].inner.sise: unknown field (want one of: size)",
		"f.yaml:7: e[2].inner: want a mapping",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v\nwant it to contain %q", err, w)
		}
	}

	// Decoded by yaml alone, the error still names line and field.
	var e entry
	err = yaml.Unmarshal([]byte("name: a\ninner: {size: many}\n"), &e)
	if err == nil || !strings.Contains(err.Error(), `line 2: inner.size: want a whole number, not "many"`) {
		t.Errorf("yaml alone: %v", err)
	}
	if err := yaml.Unmarshal([]byte("name: a\ntimeout: 3s\ninner: {size: 2}\n"), &e); err != nil || e.Name != "a" || e.Timeout.Seconds() != 3 || e.Inner.Size != 2 {
		t.Errorf("good entry: %+v %v", e, err)
	}
}

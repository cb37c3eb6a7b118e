package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configerr"
)

// imapYAMLIndex knows the line of every field of a YAML document by its
// path ("listen[1].addr"), for error messages after decoding.
type imapYAMLIndex struct {
	lines map[string]int
	keys  []imapYAMLKey // every mapping key, for unknown-field messages
}

type imapYAMLKey struct {
	path string
	key  string
	line int
}

func newIMAPYAMLIndex(root *yaml.Node) *imapYAMLIndex {
	x := &imapYAMLIndex{lines: map[string]int{}}
	if root != nil && root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		x.walk("", root.Content[0], 0)
	}
	return x
}

// maxYAMLDepth bounds the walk (a config file is shallow; aliases could
// make it deep).
const maxYAMLDepth = 32

func (x *imapYAMLIndex) walk(path string, n *yaml.Node, depth int) {
	if depth > maxYAMLDepth {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			x.lines[p] = k.Line
			x.keys = append(x.keys, imapYAMLKey{path: p, key: k.Value, line: k.Line})
			x.walk(p, v, depth+1)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			x.lines[p] = item.Line
			x.walk(p, item, depth+1)
		}
	}
}

// line returns the line of path, or of its closest parent that is in the
// file (0 if none).
func (x *imapYAMLIndex) line(path string) int {
	for p := path; p != ""; {
		if l, ok := x.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// keyAt finds the path of mapping key name on line.
func (x *imapYAMLIndex) keyAt(line int, name string) string {
	for _, k := range x.keys {
		if k.line == line && k.key == name {
			return k.path
		}
	}
	return name
}

// fieldAt names the deepest field that starts on line.
func (x *imapYAMLIndex) fieldAt(line int) string {
	best := ""
	for _, k := range x.keys {
		if k.line == line && len(k.path) > len(best) {
			best = k.path
		}
	}
	return best
}

var (
	imapReLine    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	imapReUnknown = regexp.MustCompile(`^field (\S+) not found in type \S*\.(\w+)$`)
	imapReType    = regexp.MustCompile(`into (?:\[\])?\*?\S*\.(imap\w+)`)
)

// imapKnownFields lists the YAML keys of each config type, for "unknown
// field (want one of ...)".
func imapKnownFields(typeName string) string {
	t, ok := imapConfigTypes[typeName]
	if !ok {
		return ""
	}
	var keys []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// imapYAMLErrors turns the yaml package's errors into configerr.Errors
// naming file, line and field.
func imapYAMLErrors(file string, x *imapYAMLIndex, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		line := 0
		if sm := imapReLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
		}
		m = strings.TrimPrefix(m, "yaml: ")
		if sm := imapReUnknown.FindStringSubmatch(m); sm != nil {
			errs = append(errs, &configerr.Error{File: file, Line: line, Field: x.keyAt(line, sm[1]),
				Err: fmt.Errorf("unknown field (want one of: %s)", imapKnownFields(sm[2]))})
			continue
		}
		if sm := imapReType.FindStringSubmatch(m); sm != nil {
			m = strings.Replace(m, sm[0], "into a mapping with "+imapKnownFields(sm[1]), 1)
		}
		errs = append(errs, &configerr.Error{File: file, Line: line, Field: x.fieldAt(line), Err: errors.New(m)})
	}
	return errors.Join(errs...)
}

// imapConfigTypes maps the config types' names (as the yaml package spells
// them in errors) to their types.
var imapConfigTypes = map[string]reflect.Type{
	"imapFileConfig":         reflect.TypeFor[imapFileConfig](),
	"imapListenConfig":       reflect.TypeFor[imapListenConfig](),
	"imapTLSConfig":          reflect.TypeFor[imapTLSConfig](),
	"imapBackendTLSConfig":   reflect.TypeFor[imapBackendTLSConfig](),
	"imapPenaltyConfig":      reflect.TypeFor[imapPenaltyConfig](),
	"imapLogConfig":          reflect.TypeFor[imapLogConfig](),
	"imapPenaltyRedisConfig": reflect.TypeFor[imapPenaltyRedisConfig](),
}

package yamlconf

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configerr"
)

// RenamedKeys is implemented by a config struct whose keys had another
// spelling before: old key -> new spelling, as the message should give it
// ("tls-cert" -> "tls.cert"). Kebab-case keys whose snake_case form is a
// key of the struct need no entry.
type RenamedKeys interface {
	RenamedKeys() map[string]string
}

// Positioned is an error of a type's own UnmarshalYAML that knows where
// inside its value the problem lies: Load reports the error's cause
// (Unwrap) at that line, under field below the value's path ("cache.ttl";
// "" for the value itself), instead of the whole error at the value's
// first line.
type Positioned interface {
	error
	Position() (line int, field string)
}

// maxDepth bounds the walk: config files are shallow, aliases could make
// them deep.
const maxDepth = 32

// maxAliased bounds the values a file holds through its aliases: a few
// anchors used over and over ("billion laughs") would otherwise make the
// walk, which follows each alias, take hours from a file of kilobytes.
const maxAliased = 100_000

// overAliased is the alias of n's tree through which the values reached
// by aliases pass maxAliased (the outermost one); nil when they do not.
func overAliased(n *yaml.Node) *yaml.Node {
	count := 0
	return countAliased(n, false, 0, &count)
}

// countAliased adds to count the values of n reached through an alias
// (via), following aliases; deeper than maxDepth is the walk's problem.
func countAliased(n *yaml.Node, via bool, depth int, count *int) *yaml.Node {
	if depth > maxDepth {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil && countAliased(n.Alias, true, depth+1, count) != nil {
			return n
		}
		return nil
	}
	if via {
		if *count++; *count > maxAliased {
			return n
		}
	}
	for _, c := range n.Content {
		if at := countAliased(c, via, depth+1, count); at != nil {
			return at
		}
	}
	return nil
}

// aliasError is the problem of a tree over maxAliased.
func aliasError() error {
	return fmt.Errorf("aliases expand to more than %d values (an anchor used over and over?)", maxAliased)
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	renamedKeysType     = reflect.TypeFor[RenamedKeys]()
	durationType        = reflect.TypeFor[time.Duration]()
)

func mustStructPtr(v any) reflect.Type {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("yamlconf: decode into %T, want a pointer", v))
	}
	return t.Elem()
}

// walker checks a node tree against a Go type before yaml decodes it, so
// that every problem is found with its line and field path, in words of
// our own (yaml's messages name Go types).
type walker struct {
	doc  *Doc
	errs Errors
}

func (w *walker) problem(n *yaml.Node, path, format string, args ...any) {
	w.errs.Add(&configerr.Error{File: w.doc.File, Line: n.Line, Field: path, Err: fmt.Errorf(format, args...)})
	if _, ok := w.doc.lines[path]; !ok && path != "" {
		w.doc.lines[path] = n.Line
	}
}

// value checks n, the value at path, against t.
func (w *walker) value(n *yaml.Node, path string, t reflect.Type, depth int) {
	if depth > maxDepth {
		w.problem(n, path, "nested too deep (more than %d levels)", maxDepth)
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
		depth++
		if depth > maxDepth {
			w.problem(n, path, "aliases nested too deep")
			return
		}
	}
	if !w.resolves(n, path) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the zero value
	}
	if custom(t) {
		err := n.Decode(reflect.New(t).Interface())
		if err == nil {
			return
		}
		many := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok && allPositioned(j.Unwrap()) {
			many = j.Unwrap() // several problems, each at its line (DecodeNode)
		}
		for _, err := range many {
			if pe, ok := errors.AsType[Positioned](err); ok {
				line, field := pe.Position()
				cause := errors.Unwrap(pe)
				if cause == nil {
					cause = pe
				}
				w.errs.Add(&configerr.Error{File: w.doc.File, Line: line, Field: join(path, field), Err: cause})
			} else {
				w.problem(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.value(n, path, t.Elem(), depth)
	case reflect.Interface:
		w.anything(n, path, depth) // any value whose tags resolve
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			hint := ""
			if n.ShortTag() == "!!bool" {
				hint = "; write {} for a block with every default"
			}
			w.problem(n, path, "want a mapping (keys: %s), not %s%s", strings.Join(fieldNames(t), ", "), kindName(n), hint)
			return
		}
		w.mapping(n, path, t, map[string]int{}, depth)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.problem(n, path, "want a mapping, not %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			w.doc.lines[p] = k.Line
			w.value(k, p, t.Key(), depth+1)
			w.value(v, p, t.Elem(), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.problem(n, path, "want a list (write [a, b] or one \"- item\" per line), not %s", kindName(n))
			return
		}
		if t.Kind() == reflect.Array && len(n.Content) != t.Len() {
			w.problem(n, path, "want %d items, not %d", t.Len(), len(n.Content))
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			w.doc.lines[p] = item.Line
			w.value(item, p, t.Elem(), depth+1)
		}
	default:
		w.scalar(n, path, t)
	}
}

// resolves reports whether n, if it has an explicit tag, is a value of
// its tag; if not, it adds the problem. yaml reports a scalar that is not
// ("!!int x") without a line, and decodes a mapping tagged !!null as a
// plain struct, past its UnmarshalYAML and so past its checks.
func (w *walker) resolves(n *yaml.Node, path string) bool {
	if n.Style&yaml.TaggedStyle == 0 {
		return true
	}
	switch tag := n.ShortTag(); n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			w.problem(n, path, "%s", yamlMessage(err))
			return false
		}
	case yaml.MappingNode, yaml.SequenceNode:
		if want := map[yaml.Kind]string{yaml.MappingNode: "!!map", yaml.SequenceNode: "!!seq"}[n.Kind]; tag != want {
			w.problem(n, path, "%s tagged %s (leave the tag out)", kindName(n), tag)
			return false
		}
	}
	return true
}

// anything checks the tags of n and its values, n being the value of an
// interface, which takes any value.
func (w *walker) anything(n *yaml.Node, path string, depth int) {
	if depth > maxDepth {
		w.problem(n, path, "nested too deep (more than %d levels)", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			w.anything(n.Alias, path, depth+1)
		}
		return
	}
	if !w.resolves(n, path) {
		return
	}
	for i, c := range n.Content {
		p := path
		switch {
		case n.Kind == yaml.SequenceNode:
			p = path + "[" + strconv.Itoa(i) + "]"
		case n.Kind == yaml.MappingNode && i%2 == 1:
			p = join(path, n.Content[i-1].Value)
		}
		w.anything(c, p, depth+1)
	}
}

// yamlMessage is the text of a yaml error, without "yaml: " or the line
// of a *yaml.TypeError (the caller names it).
func yamlMessage(err error) string {
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		_, msg := cutLine(te.Errors[0])
		return msg
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// cutLine splits an item of a *yaml.TypeError, "line 4: problem", into 4
// and "problem"; 0 and msg when msg does not start so.
func cutLine(msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, "line ")
	n, after, found := strings.Cut(rest, ": ")
	if line, err := strconv.Atoi(n); ok && found && err == nil {
		return line, after
	}
	return 0, msg
}

// mapping checks the keys of n against the fields of struct t. seen holds
// the keys already given (merge keys and inline structs share it).
func (w *walker) mapping(n *yaml.Node, path string, t reflect.Type, seen map[string]int, depth int) {
	fields := structFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" { // "<<: *defaults"
			for v.Kind == yaml.AliasNode && v.Alias != nil && depth < maxDepth {
				v, depth = v.Alias, depth+1
			}
			switch v.Kind {
			case yaml.MappingNode:
				w.mapping(v, path, t, seen, depth+1)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					for m.Kind == yaml.AliasNode && m.Alias != nil && depth < maxDepth {
						m, depth = m.Alias, depth+1
					}
					if m.Kind == yaml.MappingNode {
						w.mapping(m, path, t, seen, depth+1)
					}
				}
			}
			continue
		}
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			w.problem(k, path, "a key must be a plain word, not %s", kindName(k))
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			w.problem(k, p, "%s", unknownKey(t, k.Value, fields))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			w.problem(k, p, "given twice (also on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		w.doc.lines[p] = k.Line
		w.value(v, p, f, depth+1)
	}
}

// unknownKey says what is wrong with key, which t does not have.
func unknownKey(t reflect.Type, key string, fields map[string]reflect.Type) string {
	if reflect.PointerTo(t).Implements(renamedKeysType) {
		if to, ok := reflect.New(t).Interface().(RenamedKeys).RenamedKeys()[key]; ok {
			return "renamed to " + to
		}
	}
	if snake := strings.ReplaceAll(key, "-", "_"); snake != key {
		if _, ok := fields[snake]; ok {
			return "renamed to " + snake
		}
	}
	return "unknown field (want one of: " + strings.Join(fieldNames(t), ", ") + ")"
}

// scalar checks a bool, number or string value.
func (w *walker) scalar(n *yaml.Node, path string, t reflect.Type) {
	want := map[reflect.Kind]string{
		reflect.Bool: "true or false", reflect.String: "a text value",
		reflect.Float32: "a number", reflect.Float64: "a number",
	}[t.Kind()]
	if want == "" {
		want = "a whole number"
		if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr {
			want = "a whole number, 0 or more"
		}
	}
	if n.Kind != yaml.ScalarNode {
		w.problem(n, path, "want %s, not %s", want, kindName(n))
		return
	}
	if t.Kind() == reflect.String {
		return // yaml takes any scalar as a string
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.problem(n, path, "want %s, not %q", want, n.Value)
		return
	}
	if whole(t) && n.ShortTag() == "!!float" {
		// yaml truncates 1.5 to 1 (and takes 1e3 as 1000): only an
		// integer as YAML writes one is a whole number.
		w.problem(n, path, "want %s, not %q%s", want, n.Value, wholeHint(n))
	}
}

// whole reports whether t is an integer kind (time.Duration aside, which
// yaml decodes from "5s").
func whole(t reflect.Type) bool {
	k := t.Kind()
	return t != durationType && (k >= reflect.Int && k <= reflect.Int64 || k >= reflect.Uint && k <= reflect.Uintptr)
}

// wholeHint is " (write 1000)" for a float scalar that is a whole number
// in float notation ("1e3", "2.0"); "" for others.
func wholeHint(n *yaml.Node) string {
	var f float64
	if err := n.Decode(&f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return ""
	}
	return fmt.Sprintf(" (write %d)", int64(f))
}

// allPositioned reports whether every error of errs is Positioned.
func allPositioned(errs []error) bool {
	for _, err := range errs {
		if _, ok := errors.AsType[Positioned](err); !ok {
			return false
		}
	}
	return len(errs) > 0
}

// custom reports whether t (or *t) decodes itself.
func custom(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Kind() != reflect.Pointer && (pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType))
}

// structFields maps the yaml keys of struct t, inline structs included, to
// their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					m[k] = v
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // as yaml does
		}
		m[name] = f.Type
	}
	return m
}

// fieldNames lists the keys of struct t, sorted.
func fieldNames(t reflect.Type) []string {
	var names []string
	for k := range structFields(t) {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

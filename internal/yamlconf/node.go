package yamlconf

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/configerr"
)

// NodeError is a problem found inside a value that decodes itself (an
// UnmarshalYAML method): Line is its line in the file and Field its path
// below that value ("cache.ttl"; "" for the value itself). It is
// Positioned, so Load reports it as "FILE:LINE: PATH.FIELD: problem";
// decoded by yaml alone, it reads "line 4: cache.ttl: problem".
type NodeError struct {
	Line  int
	Field string
	Err   error
}

func (e *NodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// Position is the problem's line and field (Positioned).
func (e *NodeError) Position() (line int, field string) { return e.Line, e.Field }

// NodeErrorf is a NodeError at n, the value being decoded itself.
func NodeErrorf(n *yaml.Node, format string, args ...any) *NodeError {
	return &NodeError{Line: n.Line, Err: fmt.Errorf(format, args...)}
}

// DecodeNode is Load for one value, for an UnmarshalYAML method that
// decodes its node into a plain twin of its type (without the method):
// unknown keys, wrong kinds and bad durations are refused in the words of
// Load, each a *NodeError (several joined).
//
//	func (c *Source) UnmarshalYAML(n *yaml.Node) error {
//		type plain Source
//		return yamlconf.DecodeNode(n, (*plain)(c))
//	}
func DecodeNode(n *yaml.Node, v any) error {
	if at := overAliased(n); at != nil {
		return &NodeError{Line: at.Line, Err: aliasError()}
	}
	w := &walker{doc: &Doc{lines: map[string]int{}}}
	w.value(n, "", mustStructPtr(v), 0)
	if len(w.errs) > 0 {
		errs := make([]error, 0, len(w.errs))
		for _, err := range w.errs {
			if ce, ok := errors.AsType[*configerr.Error](err); ok {
				err = &NodeError{Line: ce.Line, Field: ce.Field, Err: ce.Err}
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	if err := n.Decode(v); err != nil { // the walk missed it
		return &NodeError{Line: n.Line, Err: err}
	}
	return nil
}

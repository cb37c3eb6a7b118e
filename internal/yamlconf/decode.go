package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/cfgfile"
	"github.com/pipegate/pipegate/internal/configerr"
)

// MaxErrors bounds the problems reported for one file.
const MaxErrors = 20

// Doc is a decoded config file: its name, its folder and the line of every
// field, for the loader's own checks after Load. A nil *Doc stands for the
// command line: paths are taken as given, and errors carry the field but no
// file, for the caller to name the flag (see FlagError).
type Doc struct {
	File  string         // as given to Load
	Dir   string         // absolute folder of File: relative paths start here
	lines map[string]int // "forwards[1].tls.cert" -> line
}

// Load reads file and decodes it into v, a pointer to a struct. Errors are
// *configerr.Error (several joined with errors.Join), naming the file, the
// line and the field: a syntax error, an unknown or renamed key, a value of
// the wrong kind (a list for a string, "yes please" for a bool, "5 min" for
// a Duration, "!!int x", 1.5 or 1e3 for a whole number, which yaml would
// truncate or convert), a second YAML document, aliases that expand to
// more than 100000 values. An empty file decodes to v's zero value.
func Load(file string, v any) (*Doc, error) {
	data, err := cfgfile.Read(file, cfgfile.Small)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Decode(file, data, v)
}

// Decode is Load for data already read from file.
func Decode(file string, data []byte, v any) (*Doc, error) {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	d := &Doc{File: file, Dir: dir, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		// A syntax error: yaml's own text already says "line N".
		return nil, &configerr.Error{File: file, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		return nil, &configerr.Error{File: file, Line: line, Err: errors.New("more than one YAML document (a second --- ?)")}
	}
	if at := overAliased(root.Content[0]); at != nil {
		return nil, &configerr.Error{File: file, Line: at.Line, Err: aliasError()}
	}
	w := &walker{doc: d}
	w.value(root.Content[0], "", mustStructPtr(v), 0)
	if err := w.errs.Err(); err != nil {
		return nil, err
	}
	if err := root.Decode(v); err != nil { // the walk missed it: say so plainly
		return nil, missed(file, err)
	}
	return d, nil
}

// missed is err, yaml's error for what the walk let through, as problems
// of file: one at each line a *yaml.TypeError names.
func missed(file string, err error) error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return &configerr.Error{File: file, Err: err}
	}
	var errs Errors
	for _, item := range te.Errors {
		line, msg := cutLine(item)
		errs.Add(&configerr.Error{File: file, Line: line, Err: errors.New(msg)})
	}
	return errs.Err()
}

// Line is the line of field ("listen[1].addr"), or of its closest parent
// in the file; 0 when none is.
func (d *Doc) Line(field string) int {
	if d == nil {
		return 0
	}
	for p := field; p != ""; {
		if l, ok := d.lines[p]; ok {
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

// Has reports whether field is written in the file.
func (d *Doc) Has(field string) bool {
	if d == nil {
		return false
	}
	_, ok := d.lines[field]
	return ok
}

// Error is a problem with field: "FILE:LINE: FIELD: err".
func (d *Doc) Error(field string, err error) *configerr.Error {
	if d == nil {
		return &configerr.Error{Field: field, Err: err}
	}
	return &configerr.Error{File: d.File, Line: d.Line(field), Field: field, Err: err}
}

// Errorf is Error with a formatted problem.
func (d *Doc) Errorf(field, format string, args ...any) *configerr.Error {
	return d.Error(field, fmt.Errorf(format, args...))
}

// Path resolves p, a file name in the config, against the file's folder.
func (d *Doc) Path(p string) string {
	if d == nil || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.Dir, p)
}

// Errors collects a loader's problems, at most MaxErrors of them.
type Errors []error

// Add keeps err unless it is nil or the list is full.
func (e *Errors) Add(err error) {
	if err != nil && len(*e) < MaxErrors {
		*e = append(*e, err)
	}
}

// Err is nil without problems, else them all joined (one per line).
func (e Errors) Err() error { return errors.Join(e...) }

// FlagError renders err, problems found with a nil *Doc, for the command
// line: each *configerr.Error becomes "flag --NAME: problem", NAME being
// flagOf(its field) ("tls.cert" -> "tls-cert"). Other errors are kept.
func FlagError(err error, flagOf func(field string) string) error {
	if err == nil {
		return nil
	}
	if many, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range many.Unwrap() {
			errs = append(errs, FlagError(e, flagOf))
		}
		return errors.Join(errs...)
	}
	if ce, ok := errors.AsType[*configerr.Error](err); ok && ce.File == "" {
		return fmt.Errorf("flag --%s: %w", flagOf(ce.Field), ce.Err)
	}
	return err
}

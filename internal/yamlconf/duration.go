package yamlconf

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a config duration written "500ms", "30s", "5m" or "1h30m";
// negative durations are refused. It is a flag.Value too, so that a flag
// and its key share one field. Given tells "0s" from absent.
type Duration struct {
	time.Duration
	Given bool // set by the file or a flag, even to 0
	Line  int  // its line in the file; 0 when not from a file
}

// Or is the duration when given, else def.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.Given {
		return d.Duration
	}
	return def
}

// UnmarshalYAML reads a duration scalar.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or 5m")
	}
	if err := d.Set(n.Value); err != nil {
		return err
	}
	d.Line = n.Line
	return nil
}

// Set parses s (flag.Value).
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration{Duration: v, Given: true}
	return nil
}

// String is the duration as Go writes it; "" when not given (flag.Value).
func (d Duration) String() string {
	if !d.Given {
		return ""
	}
	return d.Duration.String()
}

// ParseDuration is time.ParseDuration with a message for config files,
// refusing negative durations.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 500ms, 30s, 5m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return v, nil
}

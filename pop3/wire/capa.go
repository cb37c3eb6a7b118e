package wire

import "strings"

// Capability is one line of a CAPA response (RFC 2449 section 5): a tag
// and its parameters, such as "SASL" with "PLAIN", "LOGIN".
type Capability struct {
	Name string // upper case
	Args []string
}

// Capabilities is a CAPA response, in the server's order.
type Capabilities []Capability

// ParseCapa parses the lines of a CAPA response; blank lines are skipped.
func ParseCapa(lines []string) Capabilities {
	var caps Capabilities
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		caps = append(caps, Capability{Name: strings.ToUpper(f[0]), Args: f[1:]})
	}
	return caps
}

// Has reports whether caps holds name (case-insensitive).
func (caps Capabilities) Has(name string) bool {
	_, ok := caps.Args(name)
	return ok
}

// Args returns the parameters of name, and whether it is there.
func (caps Capabilities) Args(name string) ([]string, bool) {
	for _, c := range caps {
		if strings.EqualFold(c.Name, name) {
			return c.Args, true
		}
	}
	return nil, false
}

// Lines returns caps as the lines of a CAPA response.
func (caps Capabilities) Lines() []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, strings.Join(append([]string{c.Name}, c.Args...), " "))
	}
	return out
}

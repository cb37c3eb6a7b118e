package maild

import (
	"reflect"
	"strings"

	"github.com/pipegate/pipegate/internal/yamlconf"
)

// changedKeys re-reads the config file and names the top-level keys whose
// values differ from those s was loaded with: what a SIGHUP does not apply
// (it re-reads the routes and certificates, not the file itself). An
// error says that the file no longer loads.
func (s *Settings) changedKeys() ([]string, error) {
	if s.File == "" { // made by hand, not by Load
		return nil, nil
	}
	var now fileConfig
	if _, err := yamlconf.Load(s.File, &now); err != nil {
		return nil, err
	}
	var keys []string
	was, is := reflect.ValueOf(s.loaded), reflect.ValueOf(now)
	for i := range was.NumField() {
		if !reflect.DeepEqual(was.Field(i).Interface(), is.Field(i).Interface()) {
			name, _, _ := strings.Cut(was.Type().Field(i).Tag.Get("yaml"), ",")
			keys = append(keys, name)
		}
	}
	return keys, nil
}

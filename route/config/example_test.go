package config_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/config"
)

func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "pipegate-example-")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "routes.yaml"), []byte(`
routes:
  - account: alice@a.test
    backend: imap://127.0.0.1:14301
default: imap+starttls://127.0.0.1:14302
`), 0o600)

	var cfg struct {
		RouteSources []config.SourceConfig `yaml:"route_sources"`
		RouteCache   config.CacheConfig    `yaml:"route_cache"`
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(`
route_sources:
  - type: redis                    # a copy of the map, in front
    url: redis://127.0.0.1:1/0     # (nothing listens there in this example)
    on_error: next                 # down: ask the next source
  - type: file
    path: routes.yaml
`)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		fmt.Println(err)
		return
	}
	router, reload, closeSources, err := config.Build(context.Background(), dir, cfg.RouteSources, cfg.RouteCache)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer closeSources()
	_ = reload // call on SIGHUP

	rt, err := router.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test"})
	fmt.Println(rt.Backends, err)
	// Output: [imap://127.0.0.1:14301] <nil>
}

package forward_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pipegate/pipegate/forward"
)

// LoadFile names the file, the line and the field of each problem.
func ExampleLoadFile() {
	dir, _ := os.MkdirTemp("", "forward-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "forward.yaml")
	os.WriteFile(path, []byte("forwards:\n  - listen: 127.0.0.1:8080\n    to: [127.0.0.1:9090]\n    max_conns: -1\n"), 0o600)
	_, err := forward.LoadFile(path, forward.TLSCache{})
	fmt.Println(strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)))
	// Output: forward.yaml:4: forwards[0].max_conns: negative value -1
}

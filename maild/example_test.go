package maild_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pipegate/pipegate/maild"
)

// Load names the file, the line and the field of each problem; under
// `pipegate imap` (CommandIMAP) a listener of another protocol is one.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "maild-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mail.yaml")
	os.WriteFile(path, []byte("listen:\n  - addr: 127.0.0.1:1110\n    protocol: pop3\nroutes_file: routes.yaml\n"), 0o600)
	protocols := maild.Protocols{"imap": {}, "pop3": {}} // cmd/pipegate's table has the constructors
	_, err := maild.Load(path, maild.CommandIMAP, protocols)
	fmt.Println(strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)))
	// Output: mail.yaml:3: listen[0].protocol: "pop3": pipegate imap serves IMAP only; run pipegate mail for pop3
}

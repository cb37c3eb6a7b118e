package main

import (
	"os"
	"testing"

	"github.com/pipegate/pipegate/internal/configtest"
)

// writeIMAPFiles writes a config beside its cert, key, CA and routes
// files (configtest.WriteConfig) and returns the config's path.
func writeIMAPFiles(t *testing.T, config string) string { return configtest.WriteConfig(t, config) }

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIMAPPenaltyStoreConfig checks auth_penalty.redis's fields; the
// store at work is tested against a real Redis in tests/instances_test.go.
func TestIMAPPenaltyStoreConfig(t *testing.T) {
	dir := t.TempDir()
	pass, empty := filepath.Join(dir, "redis.pass"), filepath.Join(dir, "empty.pass")
	if err := os.WriteFile(pass, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  imapPenaltyRedisConfig
		want string // in the error; "" for none
	}{
		{"minimal", imapPenaltyRedisConfig{Addr: "127.0.0.1:6379"}, ""},
		{"all fields", imapPenaltyRedisConfig{Addr: "127.0.0.1:6379", PasswordFile: pass, DB: 2, Prefix: "x:"}, ""},
		{"no addr", imapPenaltyRedisConfig{}, "auth_penalty.redis.addr: missing"},
		{"addr without port", imapPenaltyRedisConfig{Addr: "127.0.0.1"}, "auth_penalty.redis.addr: \"127.0.0.1\": want HOST:PORT"},
		{"negative db", imapPenaltyRedisConfig{Addr: "127.0.0.1:6379", DB: -1}, "auth_penalty.redis.db: -1"},
		{"password file missing", imapPenaltyRedisConfig{Addr: "127.0.0.1:6379", PasswordFile: pass + ".gone"}, "auth_penalty.redis.password_file: open " + pass + ".gone"},
		{"password file empty", imapPenaltyRedisConfig{Addr: "127.0.0.1:6379", PasswordFile: empty}, "auth_penalty.redis.password_file: " + empty + " is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, closeStore, err := imapPenaltyStore(tc.cfg)
			if closeStore != nil {
				defer closeStore()
			}
			switch {
			case tc.want == "" && (err != nil || store == nil):
				t.Fatalf("store %v, err %v", store, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Redis is a redis-server on a loopback port, without persistence: data
// does not survive Stop and Start.
type Redis struct {
	Addr string // 127.0.0.1:PORT
	*proc
}

// StartRedis starts redis-server (Debian package redis-server) with its
// working files in dir.
func StartRedis(dir string) (*Redis, error) {
	path, err := find("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("realserver: redis: %w", err)
	}
	r := &Redis{Addr: hostPort(port), proc: &proc{
		name: "redis-server",
		path: path,
		args: []string{
			"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice",
		},
		dir:     dir,
		ready:   "Ready to accept connections",
		stopSig: syscall.SIGTERM,
	}}
	if err := r.Start(); err != nil {
		return nil, err
	}
	return r, nil
}

package realserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Postgres is a PostgreSQL server on a loopback port with trust
// authentication for the user "postgres" and the database "postgres".
type Postgres struct {
	Addr    string // 127.0.0.1:PORT
	ConnURL string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	*proc
}

// StartPostgres runs initdb in dir and starts the server (Debian package
// postgresql). PostgreSQL refuses to run as root, so as root it runs as the
// user "postgres" that the package creates, and dir and its parents are
// made searchable (o+x) for it.
func StartPostgres(dir string) (*Postgres, error) {
	initdb, err := find("postgresql", "/usr/lib/postgresql/*/bin/initdb")
	if err != nil {
		return nil, err
	}
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("realserver: postgres as root needs the user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := letOthersIn(dir); err != nil {
			return nil, fmt.Errorf("realserver: postgres: %w", err)
		}
	}
	base := filepath.Join(dir, "pg")
	data := filepath.Join(base, "data")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("realserver: postgres: %w", err)
	}
	if cred != nil {
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("realserver: postgres: %w", err)
		}
	}
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-sync", "--no-instructions", "--locale=C")
	cmd.Dir = base
	cmd.SysProcAttr = sysProcAttr(cred)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("realserver: initdb: %v:\n%s", err, out)
	}
	p := &Postgres{
		Addr:    hostPort(port),
		ConnURL: fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", hostPort(port)),
		proc: &proc{
			name: "postgres",
			path: postgres,
			args: []string{"-D", data, "-p", strconv.Itoa(port),
				"-c", "listen_addresses=127.0.0.1",
				"-c", "unix_socket_directories=" + base,
				"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
				"-c", "max_connections=50", "-c", "shared_buffers=16MB",
			},
			dir:     base,
			cred:    cred,
			ready:   "database system is ready to accept connections",
			stopSig: syscall.SIGINT, // fast shutdown
		},
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// letOthersIn adds o+x to dir and each parent that lacks it, so that
// another user can reach dir (t.TempDir's parents are 0700).
func letOthersIn(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

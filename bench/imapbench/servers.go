package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/internal/freeport"
)

// dovecotTuning makes every instance serve many sessions from few
// processes (Dovecot's "high-performance" login mode) and lets one user
// hold many sessions from one address.
const dovecotTuning = `
service imap-login {
  service_count = 0
  process_min_avail = 1
  process_limit = 8
  client_limit = 4096
}
service imap {
  process_limit = 4096
}
default_client_limit = 8192
protocol imap {
  mail_max_userip_connections = 100000
}
`

// listenAddrs returns a plain and a TLS listening address for a proxy.
func listenAddrs() (plain, tlsAddr string, err error) {
	if plain, err = freeport.Addr(); err != nil {
		return "", "", err
	}
	if tlsAddr, err = freeport.Addr(); err != nil {
		return "", "", err
	}
	return plain, tlsAddr, nil
}

// startPipegate runs `pipegate imap` with plain and TLS listeners in front
// of backend (plain IMAP), serving cert, and alt too when it is set.
func startPipegate(ctx context.Context, bin, dir string, cert, alt keyPair, backend string) (proc *benchproc.Process, plain, tlsAddr string, err error) {
	if plain, tlsAddr, err = listenAddrs(); err != nil {
		return nil, "", "", err
	}
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte("default: imap://"+backend+"\n"), 0o644); err != nil {
		return nil, "", "", err
	}
	tlsBlock := fmt.Sprintf("  cert: %s\n  key: %s\n", cert.cert, cert.key)
	if alt.cert != "" {
		tlsBlock = fmt.Sprintf("  certs:\n    - {cert: %s, key: %s}\n    - {cert: %s, key: %s}\n", cert.cert, cert.key, alt.cert, alt.key)
	}
	config := filepath.Join(dir, "pipegate.yaml")
	err = os.WriteFile(config, []byte(fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    tls: true
tls:
%sroutes_file: %s
allow_plaintext_auth: true
max_prelogin_connections_per_ip: 0 # every client comes from 127.0.0.1
drain_timeout: 2s
log:
  level: warn
`, plain, tlsAddr, tlsBlock, routes)), 0o644)
	if err != nil {
		return nil, "", "", err
	}
	proc, err = benchproc.Start(ctx, benchproc.Server{
		Name: "pipegate", Argv: []string{bin, "imap", "--config", config},
		Log: filepath.Join(dir, "pipegate.log"), Listen: []string{plain, tlsAddr},
	})
	if err != nil {
		return nil, "", "", err
	}
	return proc, plain, tlsAddr, nil
}

// startNginx runs nginx's mail proxy with plain and TLS listeners; its
// auth_http service sends every login to backend. It serves cert, and alt
// too when it is set.
func startNginx(ctx context.Context, bin, dir string, cert, alt keyPair, authAddr string) (proc *benchproc.Process, plain, tlsAddr string, err error) {
	if plain, tlsAddr, err = listenAddrs(); err != nil {
		return nil, "", "", err
	}
	altLines := ""
	if alt.cert != "" {
		altLines = fmt.Sprintf("    ssl_certificate %s;\n    ssl_certificate_key %s;\n", alt.cert, alt.key)
	}
	conf := filepath.Join(dir, "nginx.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_mail_module.so;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
  worker_connections 8192;
}
mail {
  server_name localhost;
  auth_http %[2]s/auth;
  proxy_pass_error_message on;
  server {
    listen %[3]s;
    protocol imap;
  }
  server {
    listen %[4]s ssl;
    protocol imap;
    ssl_certificate %[5]s;
    ssl_certificate_key %[6]s;
%[7]s    ssl_protocols TLSv1.2 TLSv1.3; # nginx before 1.23.4 leaves TLS 1.3 out by default
    ssl_session_cache off;
    ssl_session_tickets off;
  }
}
`, dir, authAddr, plain, tlsAddr, cert.cert, cert.key, altLines)), 0o644)
	if err != nil {
		return nil, "", "", err
	}
	proc, err = benchproc.Start(ctx, benchproc.Server{
		Name: "nginx", Argv: []string{bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", conf},
		Log: filepath.Join(dir, "nginx.out"), ErrorLog: filepath.Join(dir, "error.log"), Listen: []string{plain, tlsAddr},
	})
	if err != nil {
		return nil, "", "", err
	}
	return proc, plain, tlsAddr, nil
}

// authHTTP is nginx's auth_http service: every login goes to backend.
type authHTTP struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

func startAuthHTTP(backend string) (*authHTTP, error) {
	host, port, err := net.SplitHostPort(backend)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", host)
		w.Header().Set("Auth-Port", port)
	})
	a := &authHTTP{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, addr: l.Addr().String(), done: make(chan struct{})}
	go serveAuthHTTP(a, l)
	return a, nil
}

// serveAuthHTTP is the auth_http accept loop.
func serveAuthHTTP(a *authHTTP, l net.Listener) {
	defer close(a.done)
	if err := a.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "auth_http:", err)
	}
}

func (a *authHTTP) close() {
	a.srv.Shutdown(context.Background())
	<-a.done
}

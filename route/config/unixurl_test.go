package config

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// TestHTTPSourceOverUnixSocket: an http source's url may be nginx's
// "unix:/path/to/socket:/uri"; the built router asks the service on that
// socket.
func TestHTTPSourceOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "auth.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	uris := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.Host + " " + r.RequestURI
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "14301")
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	defer func() {
		_ = srv.Close()
		<-done
	}()

	c, err := decode(t, "route_sources:\n  - type: http\n    url: unix:"+sock+":/auth\n")
	if err != nil {
		t.Fatal(err)
	}
	r, _, closeAll, err := Build(context.Background(), t.TempDir(), c.RouteSources, c.RouteCache)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer closeAll()
	if got, err := lookup(r, "alice@a.test"); err != nil || got != "imap://127.0.0.1:14301" {
		t.Fatalf("lookup through the socket: %s %v", got, err)
	}
	if got := <-uris; got != "localhost /auth" {
		t.Errorf("the service saw %q, want Host localhost and URI /auth", got)
	}
}

// TestHTTPSourceBadUnixURL: a bad unix: url is told at its line, as the
// url field of its entry, with the problem alone (what check-config
// prints as FILE:LINE: route_sources[N].url: problem).
func TestHTTPSourceBadUnixURL(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"unix:run/auth.sock:/auth", `url "unix:run/auth.sock:/auth": socket path "run/auth.sock" is relative (want an absolute path: unix:/PATH/TO/SOCKET:/URI)`},
		{"unix::/auth", `url "unix::/auth": no socket path (want unix:/PATH/TO/SOCKET:/URI)`},
		{"unix:/run/auth.sock:auth", `url "unix:/run/auth.sock:auth": URI "auth" after the socket path does not start with / (want unix:/PATH/TO/SOCKET:/URI; the path ends at the first ':')`},
	} {
		yaml := "route_sources:\n  - type: file\n    path: routes.yaml\n  - type: http\n    timeout: 2s\n    url: " + tt.url + "\n"
		c, err := decode(t, yaml)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		writeFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:14301\n")
		_, _, closeAll, err := Build(context.Background(), dir, c.RouteSources, c.RouteCache)
		if err == nil {
			closeAll()
			t.Fatalf("%s: Build took it", tt.url)
		}
		fe, ok := errors.AsType[*FieldError](err)
		if !ok {
			t.Fatalf("%s: err = %v (%T), want a *FieldError", tt.url, err, err)
		}
		if fe.Line != 6 || fe.Key() != "route_sources[1].url" || fe.Err.Error() != tt.want {
			t.Errorf("%s: line %d, key %s, problem %q\nwant line 6, key route_sources[1].url, problem %q", tt.url, fe.Line, fe.Key(), fe.Err, tt.want)
		}
	}

	c, err := decode(t, "route_sources:\n  - type: http\n    url: unix:/run/auth.sock:/auth\n    tls_ca: ca.pem\n")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Build(context.Background(), t.TempDir(), c.RouteSources, c.RouteCache)
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key() != "route_sources[0].tls_ca" || fe.Line != 4 {
		t.Errorf("unix: url with tls_ca: err = %v, want route_sources[0] (line 4).tls_ca: the source does not use TLS", err)
	}
}

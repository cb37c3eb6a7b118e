package authhttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// unixPrefix starts a URL that reaches the service over a Unix socket, as
// nginx's "auth_http unix:/path/to/socket:/uri".
const unixPrefix = "unix:"

// maxSocketPath is the longest socket path Linux takes (sun_path is 108
// bytes with its NUL), as nginx checks it.
const maxSocketPath = 107

// isUnixURL reports whether raw is a unix: URL (the prefix in any case,
// as nginx's ngx_parse_url takes it).
func isUnixURL(raw string) bool {
	return len(raw) >= len(unixPrefix) && strings.EqualFold(raw[:len(unixPrefix)], unixPrefix)
}

// parseUnixURL splits "unix:/run/auth.sock:/auth" into the socket's path
// and the request URI, as nginx reads its auth_http: the path runs to
// the first ':' after "unix:" (so it holds none), the URI is the rest,
// "/" when there is none. The path must be absolute: a daemon's working
// directory is no place to look for it.
func parseUnixURL(raw string) (path, uri string, err error) {
	rest := raw[len(unixPrefix):]
	path, uri, _ = strings.Cut(rest, ":")
	switch {
	case path == "":
		return "", "", errors.New("no socket path (want unix:/PATH/TO/SOCKET:/URI)")
	case !strings.HasPrefix(path, "/"):
		return "", "", fmt.Errorf("socket path %q is relative (want an absolute path: unix:/PATH/TO/SOCKET:/URI)", path)
	case len(path) > maxSocketPath:
		return "", "", fmt.Errorf("socket path is %d bytes, longer than the %d a Unix socket takes", len(path), maxSocketPath)
	case strings.ContainsFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", "", fmt.Errorf("socket path %q holds a control character", path)
	}
	if uri == "" {
		uri = "/" // as nginx
	}
	if !strings.HasPrefix(uri, "/") {
		return "", "", fmt.Errorf("URI %q after the socket path does not start with / (want unix:/PATH/TO/SOCKET:/URI; the path ends at the first ':')", uri)
	}
	if strings.ContainsFunc(uri, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
		return "", "", fmt.Errorf("URI %q holds a space, control character or '#'", uri)
	}
	if _, err := url.ParseRequestURI(uri); err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", "", fmt.Errorf("URI %q: %w", uri, err)
	}
	return path, uri, nil
}

// unixDialer dials the socket at path whatever address the HTTP client
// asks for (always localhost: the request's Host, as nginx sends it).
type unixDialer struct {
	path string
	d    net.Dialer
}

func (u *unixDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	return u.d.DialContext(ctx, "unix", u.path)
}

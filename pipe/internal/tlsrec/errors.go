package tlsrec

import (
	"errors"
	"fmt"
)

// ErrUnsupported is wrapped by Export's errors for connections this package
// cannot carry on: callers keep using the *tls.Conn. Each such error also
// wraps one of the more precise errors below, which say why.
var ErrUnsupported = errors.New("unsupported")

var (
	// ErrGoRelease: this package does not read the crypto/tls of the Go
	// release the binary was built with (see Supported), or that release's
	// conn state was not laid out as expected.
	ErrGoRelease = fmt.Errorf("crypto/tls of this Go release: %w", ErrUnsupported)
	// ErrVersion: the connection does not run TLS 1.3.
	ErrVersion = fmt.Errorf("only TLS 1.3: %w", ErrUnsupported)
	// ErrSuite: a TLS 1.3 cipher suite this package does not know.
	ErrSuite = fmt.Errorf("cipher suite: %w", ErrUnsupported)
	// ErrBuffered: crypto/tls holds plaintext the application has not
	// read, or records it has not sent.
	ErrBuffered = fmt.Errorf("bytes buffered in crypto/tls: %w", ErrUnsupported)
	// ErrState: the handshake is not done, the connection has failed or it
	// has sent close_notify.
	ErrState = fmt.Errorf("connection state: %w", ErrUnsupported)
)

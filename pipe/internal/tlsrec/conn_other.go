//go:build !go1.26 || go1.27 || pipegate_notlsrec

package tlsrec

import (
	"crypto/tls"
	"fmt"
	"runtime"
)

// Supported reports whether Export can read the crypto/tls of the Go
// release this binary was built with: not this one (see conn_go126.go).
// Export refuses every connection with ErrGoRelease, without looking at
// crypto/tls's unexported state, and callers keep the *tls.Conn.
const Supported = false

func readConn(*tls.Conn) (connState, error) {
	return connState{}, fmt.Errorf("tlsrec: crypto/tls of %s not tested: %w", runtime.Version(), ErrGoRelease)
}

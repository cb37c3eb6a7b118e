package tlsrec

import (
	"crypto/tls"
	"fmt"
)

// Export takes the record layer out of c, whose handshake must be complete,
// with TLS 1.3 and no plaintext buffered: nothing decrypted that the
// application has not read, no records waiting to be sent. Records that
// crypto/tls has read from the socket but not opened yet are returned in
// State.Unread: they come before anything still in the socket. The caller must be the
// only user of c; afterwards it must never read, write or close c through
// crypto/tls again (doing so would reuse nonces), only through the socket
// under it (c.NetConn()).
//
// On error c is untouched and still usable; errors for connections this
// package does not handle wrap ErrUnsupported and one of ErrGoRelease,
// ErrVersion, ErrSuite, ErrBuffered or ErrState. Where Supported is false
// every TLS 1.3 connection gets ErrGoRelease.
func Export(c *tls.Conn) (*State, error) {
	cs := c.ConnectionState()
	if !cs.HandshakeComplete {
		return nil, fmt.Errorf("tlsrec: handshake not complete: %w", ErrState)
	}
	if cs.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("tlsrec: %s: %w", tls.VersionName(cs.Version), ErrVersion)
	}
	s, err := suiteByID(cs.CipherSuite)
	if err != nil {
		return nil, err
	}
	cst, err := readConn(c)
	if err != nil {
		return nil, err
	}
	if len(cst.inSecret) != s.hash().Size() || len(cst.outSecret) != s.hash().Size() {
		return nil, fmt.Errorf("tlsrec: traffic secrets of %d and %d bytes for %s: %w", len(cst.inSecret), len(cst.outSecret), tls.CipherSuiteName(s.id), ErrGoRelease)
	}
	st := &State{isClient: cst.isClient, Unread: cst.unread}
	if err := st.in.setSecret(s, cst.inSecret, cst.inSeq); err != nil {
		return nil, err
	}
	if err := st.out.setSecret(s, cst.outSecret, cst.outSeq); err != nil {
		return nil, err
	}
	return st, nil
}

// connState is what Export needs from crypto/tls's unexported state: read
// by readConn, whose implementation depends on the Go release.
type connState struct {
	isClient            bool
	unread              []byte // records read from the socket, not opened yet
	inSecret, outSecret []byte
	inSeq, outSeq       uint64
}

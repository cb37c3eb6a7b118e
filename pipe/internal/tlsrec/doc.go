// Package tlsrec carries on the record layer of a TLS 1.3 connection after
// crypto/tls has done its handshake, so that an event loop can move the
// connection's bytes without a goroutine per connection and without the
// buffers a *tls.Conn keeps for its whole life.
//
// Export takes the traffic secrets and record sequence numbers out of an
// idle *tls.Conn; from then on the conn must not be used (only the socket
// under it), and the returned *State seals and opens records:
//
//	st, err := tlsrec.Export(tlsConn) // handshake done, nothing buffered
//	if err != nil {
//		// not TLS 1.3, an unknown suite, buffered bytes: keep using tlsConn
//	}
//	out, err = st.Seal(out, plaintext)         // records ready for the socket
//	used, kind, plain, err := st.Open(wire)   // the whole record at the front of wire, in place
//
// Two variants save the copies a bulk stream would otherwise make.
// OpenAppend decrypts into another buffer, so that the plaintext of
// several records comes out in one piece for one write (Open leaves each
// record's plaintext between its header and its tag). PlainSlots lays a
// buffer out for plaintext read with readv straight into the records'
// places, and SealSlots seals it there: no copy between the read and the
// write, and up to four records per read and per write with 64 KiB.
//
// crypto/tls exports neither keys nor sequence numbers. Export reads them
// from the *tls.Conn's unexported fields with package reflect (read only,
// no unsafe). That reading is tied by build constraints to the Go releases
// it was tested on (conn_go126.go: Go 1.26); any other release builds
// conn_other.go instead, where Supported is false and Export refuses every
// connection with ErrGoRelease without touching crypto/tls's state, so
// callers keep the *tls.Conn (the pipe Engine counts this as the fallback
// "tls-go-release"). Within a supported release, fields that are not as
// expected also give ErrGoRelease. The worst case is the memory this
// package saves, never a wrong key or a reused nonce. The tests run a real
// crypto/tls peer on the other end; the build tag pipegate_notlsrec forces
// the fallback, to test it.
//
// Only TLS 1.3 is handled (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305):
// its record layer has no renegotiation, and KeyUpdate is handled here.
package tlsrec

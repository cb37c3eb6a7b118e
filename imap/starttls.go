package imap

import (
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/pipe"
)

// cmdStartTLS upgrades the client connection to TLS.
//
// Whatever the client sent after the STARTTLS line is already in our read
// buffer. It must never be read as commands (CVE-2011-0411: a man in the
// middle would have injected them into the plaintext stream, and they
// would then run as if sent inside TLS). It is replayed as the first bytes
// of the TLS handshake instead, like go-imap's imapserver does: a
// well-behaved client sent nothing (or the start of its ClientHello, which
// is then used as such); anything else fails the handshake.
func (ss *session) cmdStartTLS(cmd *wire.Command) {
	if len(cmd.Args) != 0 {
		ss.tagged(cmd.Tag, "BAD", "", "STARTTLS takes no arguments")
		return
	}
	if ss.isTLS {
		ss.tagged(cmd.Tag, "BAD", "", "TLS is already active")
		return
	}
	cfg := ss.srv.current().tls
	if cfg == nil {
		ss.tagged(cmd.Tag, "NO", "", "STARTTLS is not available")
		return
	}
	ss.tagged(cmd.Tag, "OK", "", "Begin TLS negotiation now")
	if ss.flush() != nil {
		return
	}
	var pending []byte
	if n := ss.br.Buffered(); n > 0 {
		b, _ := ss.br.Peek(n) // cannot fail: n bytes are buffered
		pending = append([]byte(nil), b...)
		ss.log.Debug("imap: bytes pipelined after STARTTLS go to the TLS handshake", "bytes", n)
	}
	if err := ss.handshake(pipe.WithPrefix(ss.conn, pending), cfg); err != nil {
		ss.done, ss.reason = true, "client STARTTLS handshake: "+err.Error()
		return
	}
	ss.br.Reset(ss.conn)
	ss.bw.Reset(ss.conn)
}

package pipe

import "net"

// PrefixConn is a net.Conn whose first reads return Prefix (bytes already
// read from Conn, e.g. while parsing a protocol) before reading from Conn.
//
// Join, Go and Engine.Enter recognise a *PrefixConn: they write Prefix to
// the other side first and then use Conn itself, so that a *net.TCPConn or
// *net.UnixConn underneath still takes the kernel's splice path.
type PrefixConn struct {
	net.Conn
	Prefix []byte
}

// WithPrefix returns c unchanged when prefix is empty, else a *PrefixConn.
func WithPrefix(c net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return c
	}
	return &PrefixConn{Conn: c, Prefix: prefix}
}

// Read returns the remaining prefix bytes first, then reads from Conn.
func (p *PrefixConn) Read(b []byte) (int, error) {
	if len(p.Prefix) > 0 {
		n := copy(b, p.Prefix)
		p.Prefix = p.Prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite shuts down the writing side of Conn when it can do so.
func (p *PrefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoCloseWrite
}

// NetConn returns the wrapped connection.
func (p *PrefixConn) NetConn() net.Conn { return p.Conn }

package forward

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// connKey is the pairKey of an accepted connection's socket.
func connKey(c net.Conn) (pairKey, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return pairKey{local: noZone(addrPort(c.LocalAddr())), peer: noZone(addrPort(c.RemoteAddr()))}, true
	case syscall.Conn:
		return sockKey(c)
	}
	return pairKey{}, false
}

// fileKey is the pairKey of a detached pipe's client socket.
func fileKey(f *os.File) (pairKey, bool) {
	if f == nil {
		return pairKey{}, false
	}
	return sockKey(f)
}

// sockKey reads a socket's addresses (TCP) or inode (others) without
// making it blocking (as File.Fd would).
func sockKey(c syscall.Conn) (pairKey, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return pairKey{}, false
	}
	var k pairKey
	ok := false
	if err := rc.Control(func(fd uintptr) {
		if local, err := unix.Getsockname(int(fd)); err == nil {
			if lap, isIP := sockaddrAddrPort(local); isIP {
				peer, err := unix.Getpeername(int(fd))
				if err != nil {
					return
				}
				k.local = lap
				k.peer, _ = sockaddrAddrPort(peer)
				ok = true
				return
			}
		}
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil {
			k.ino, ok = st.Ino, true
		}
	}); err != nil {
		return pairKey{}, false
	}
	return k, ok
}

// sockaddrAddrPort is an IP socket address as addrPort makes it
// (unmapped, no zone); false for other families.
func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

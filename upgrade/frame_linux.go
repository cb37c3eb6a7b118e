package upgrade

import (
	"encoding/binary"
	"fmt"
)

// A frame on the wire: header, kind, metadata. The descriptors travel as
// SCM_RIGHTS with the frame's first bytes.
//
//	"PGUP" | kind length u16 | file count u16 | meta length u32 (big endian)
const (
	frameMagic = "PGUP"
	headerLen  = 12
)

// Kinds of the greeting (kinds under "upgrade." are this package's;
// callers may use any other).
const (
	kindHello   = "upgrade.hello"
	kindRefused = "upgrade.refused"
)

type header struct {
	kindLen, nfiles int
	metaLen         int
}

// checkMessage tells why a message may not be sent.
func checkMessage(kind string, meta []byte, nfiles int) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if len(meta) > MaxMeta {
		return fmt.Errorf("upgrade: metadata of %d bytes exceeds the limit of %d", len(meta), MaxMeta)
	}
	if nfiles > MaxFiles {
		return fmt.Errorf("upgrade: %d files exceed the limit of %d per message", nfiles, MaxFiles)
	}
	return nil
}

func checkKind(kind string) error {
	if len(kind) == 0 || len(kind) > MaxKind {
		return fmt.Errorf("upgrade: kind of %d bytes: want 1 to %d", len(kind), MaxKind)
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("upgrade: kind %q: byte %d is not printable ASCII", kind, i)
		}
	}
	return nil
}

// appendFrame appends the header, kind and meta of a valid message.
func appendFrame(b []byte, kind string, meta []byte, nfiles int) []byte {
	b = append(b, frameMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(kind)))
	b = binary.BigEndian.AppendUint16(b, uint16(nfiles))
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	b = append(b, kind...)
	return append(b, meta...)
}

// parseHeader checks a received header against the bounds.
func parseHeader(b []byte) (header, error) {
	if string(b[:4]) != frameMagic {
		return header{}, fmt.Errorf("upgrade: bad frame magic %q: peer is not a pipegate upgrade channel", b[:4])
	}
	h := header{
		kindLen: int(binary.BigEndian.Uint16(b[4:])),
		nfiles:  int(binary.BigEndian.Uint16(b[6:])),
		metaLen: int(binary.BigEndian.Uint32(b[8:])),
	}
	switch {
	case h.kindLen == 0 || h.kindLen > MaxKind:
		return h, fmt.Errorf("upgrade: received kind of %d bytes: want 1 to %d", h.kindLen, MaxKind)
	case h.metaLen > MaxMeta:
		return h, fmt.Errorf("upgrade: received metadata of %d bytes exceeds the limit of %d", h.metaLen, MaxMeta)
	case h.nfiles > MaxFiles:
		return h, fmt.Errorf("upgrade: received message announces %d files, over the limit of %d", h.nfiles, MaxFiles)
	}
	return h, nil
}

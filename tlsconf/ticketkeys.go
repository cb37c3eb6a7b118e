package tlsconf

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

// maxTicketKeys bounds the keys read from a ticket key file.
const maxTicketKeys = 64

// LoadTicketKeys reads a session ticket key file: one key per line, 64
// hexadecimal characters each; blank lines and lines starting with '#'
// are ignored. The first key encrypts new tickets.
func LoadTicketKeys(file string) ([][32]byte, error) {
	data, err := cfgfile.Read(file, cfgfile.Small)
	if err != nil {
		return nil, fmt.Errorf("tls ticket keys: %w", err)
	}
	keys, err := ParseTicketKeys(data)
	if err != nil {
		return nil, fmt.Errorf("tls ticket keys %s: %w", file, err)
	}
	return keys, nil
}

// ParseTicketKeys parses the content of a ticket key file (see
// LoadTicketKeys). A key of zeros is refused: it is what a file left
// unfilled holds, and tickets sealed with it could be read by anyone.
func ParseTicketKeys(data []byte) ([][32]byte, error) {
	var keys [][32]byte
	line := 0
	for l := range bytes.Lines(data) { // no length limit: a long line is an error with its number
		line++
		text := bytes.TrimSpace(l)
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		if len(text) != 64 {
			return nil, fmt.Errorf("line %d: want 64 hex characters (32 bytes), got %d characters", line, len(text))
		}
		var k [32]byte
		if _, err := hex.Decode(k[:], text); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if k == [32]byte{} {
			return nil, fmt.Errorf("line %d: a key of zeros (make keys with: openssl rand -hex 32)", line)
		}
		if len(keys) == maxTicketKeys {
			return nil, fmt.Errorf("line %d: more than %d keys", line, maxTicketKeys)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key found (want lines of 64 hex characters)")
	}
	return keys, nil
}

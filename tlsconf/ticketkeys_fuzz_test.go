package tlsconf

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseTicketKeys: a file is accepted exactly when its lines other
// than blanks and comments are 1 to maxTicketKeys keys of 64 hex digits,
// none of zeros, which come back in order as their 32 bytes, and written again (upper or
// lower case, CRLF or LF) they read back the same; any other file is
// refused naming the first bad line, or saying that there is no key.
func FuzzParseTicketKeys(f *testing.F) {
	key := func(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	for _, s := range []string{
		"# rotate: new key first\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n" + key(0xff) + "\n",
		"# pipegate ticket keys\n\n" + key(1) + "\n" + key(2) + "\n",
		"  " + strings.ToUpper(key(0xab)) + " \r\n\r\n#\n",
		key(1)[:63] + "\n",
		key(1) + "0\n",
		strings.Replace(key(1), "0", "g", 1),
		"",
		"# only a comment\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(key(9)+"\n"), uint8(maxTicketKeys-1))
	f.Add([]byte("\n"+key(9)+"\n"), uint8(maxTicketKeys))
	// The file is n%(maxTicketKeys+2) generated key lines, then data:
	// small inputs reach the limit on the number of keys (large ones are
	// slow to minimize).
	const keyLine = 65
	var gen []byte
	for i := range maxTicketKeys + 1 {
		gen = append(gen, key(byte(i+1))+"\n"...)
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		if len(data) > 256 {
			return
		}
		end := keyLine * (int(n) % (maxTicketKeys + 2))
		data = append(gen[:end:end], data...) // a copy: gen stays
		keys, err := ParseTicketKeys(data)

		// What the file says, read line by line independently.
		var want [][32]byte
		wantErr := ""
		lines := bytes.Split(data, []byte("\n"))
		for i, l := range lines {
			l = bytes.TrimSpace(l)
			if len(l) == 0 || l[0] == '#' {
				continue
			}
			var k [32]byte
			if len(l) != 64 {
				wantErr = fmt.Sprintf("line %d: want 64 hex characters", i+1)
			} else if _, herr := hex.Decode(k[:], l); herr != nil {
				wantErr = fmt.Sprintf("line %d: encoding/hex", i+1)
			} else if k == [32]byte{} {
				wantErr = fmt.Sprintf("line %d: a key of zeros", i+1)
			} else if len(want) == maxTicketKeys {
				wantErr = fmt.Sprintf("line %d: more than %d keys", i+1, maxTicketKeys)
			}
			if wantErr != "" {
				break
			}
			want = append(want, k)
		}
		if wantErr == "" && len(want) == 0 {
			wantErr = "no key found"
		}

		if wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), wantErr) || keys != nil {
				t.Fatalf("%q: %d keys, error %v; want error %q", data, len(keys), err, wantErr)
			}
			return
		}
		if err != nil || len(keys) != len(want) {
			t.Fatalf("%q: %d keys, %v; want %d keys", data, len(keys), err, len(want))
		}
		for i := range keys {
			if keys[i] != want[i] {
				t.Fatalf("%q: key %d is %x, want %x", data, i, keys[i], want[i])
			}
		}
		for _, eol := range []string{"\n", "\r\n"} {
			var b strings.Builder
			b.WriteString("# written again" + eol)
			for i, k := range keys {
				s := hex.EncodeToString(k[:])
				if i%2 == 1 {
					s = strings.ToUpper(s)
				}
				b.WriteString(s + eol)
			}
			again, err := ParseTicketKeys([]byte(b.String()))
			if err != nil || len(again) != len(keys) {
				t.Fatalf("%q written as %q: %d keys, %v", data, b.String(), len(again), err)
			}
			for i := range keys {
				if again[i] != keys[i] {
					t.Fatalf("key %d %x read back as %x", i, keys[i], again[i])
				}
			}
		}
	})
}

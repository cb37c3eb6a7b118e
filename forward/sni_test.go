package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
)

// clientHello returns the bytes a crypto/tls client sends first for
// serverName.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	go abandonHandshake(tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}))
	// The ClientHello is one record; read its header, then its body.
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// abandonHandshake starts a handshake that fails once the pipe closes.
func abandonHandshake(c *tls.Conn) {
	c.HandshakeContext(context.Background())
	c.Close()
}

func TestPeekClientHello(t *testing.T) {
	hello := clientHello(t, "Mail.Example.COM")
	trailer := []byte("next bytes stay unread")
	r := bytes.NewReader(append(append([]byte(nil), hello...), trailer...))
	name, peeked, err := PeekClientHello(r)
	if err != nil {
		t.Fatal(err)
	}
	if name != "mail.example.com" {
		t.Errorf("server name = %q, want mail.example.com", name)
	}
	if !bytes.Equal(peeked, hello) {
		t.Errorf("peeked %d bytes, want the %d bytes of the ClientHello", len(peeked), len(hello))
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, trailer) {
		t.Errorf("left %q unread, want %q", rest, trailer)
	}
}

func TestPeekClientHelloNoSNI(t *testing.T) {
	hello := clientHello(t, "") // InsecureSkipVerify without a name: no SNI
	name, _, err := PeekClientHello(bytes.NewReader(hello))
	if err != nil || name != "" {
		t.Fatalf("got %q, %v; want no name, no error", name, err)
	}
}

// A ClientHello split over several records (allowed by TLS) is reassembled.
func TestPeekClientHelloFragmented(t *testing.T) {
	hello := clientHello(t, "a.example")
	body := hello[5:]
	var frag []byte
	for len(body) > 0 {
		n := min(len(body), 50)
		frag = append(frag, 22, 3, 1, byte(n>>8), byte(n))
		frag = append(frag, body[:n]...)
		body = body[n:]
	}
	name, peeked, err := PeekClientHello(bytes.NewReader(frag))
	if err != nil || name != "a.example" {
		t.Fatalf("got %q, %v; want a.example", name, err)
	}
	if !bytes.Equal(peeked, frag) {
		t.Errorf("peeked bytes differ from what was sent")
	}
}

func TestPeekClientHelloGarbage(t *testing.T) {
	hello := clientHello(t, "a.example")
	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")},
		{"proxy header", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")},
		{"zero length record", []byte{22, 3, 1, 0, 0}},
		{"not a client hello", []byte{22, 3, 1, 0, 4, 2, 0, 0, 0}},
		{"truncated hello body", append([]byte{22, 3, 1, 0, 34, 1, 0, 0, 30}, hello[9:39]...)},
		{"lying extension length", corruptExtensions(hello)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := PeekClientHello(bytes.NewReader(tc.input))
			if !errors.Is(err, ErrNotTLS) {
				t.Fatalf("err = %v, want ErrNotTLS", err)
			}
		})
	}
	if _, _, err := PeekClientHello(bytes.NewReader(hello[:20])); err == nil || errors.Is(err, ErrNotTLS) {
		t.Fatalf("short read: err = %v, want a read error", err)
	}
}

// corruptExtensions sets the length of the extensions block to 0xffff, so
// it claims more bytes than there are.
func corruptExtensions(hello []byte) []byte {
	b := append([]byte(nil), hello...)
	p := parser(b[9:])
	p.skip(34)
	p.skipVec(1)
	p.skipVec(2)
	p.skipVec(1)
	off := len(b) - len(p)
	b[off], b[off+1] = 0xff, 0xff
	return b
}

func FuzzPeekClientHello(f *testing.F) {
	f.Add(clientHello(f, "a.example"))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, peeked, err := PeekClientHello(bytes.NewReader(b))
		if len(peeked) > len(b) {
			t.Fatalf("peeked %d of %d bytes", len(peeked), len(b))
		}
		if err == nil && !bytes.HasPrefix(b, peeked) {
			t.Fatalf("peeked bytes are not the input's prefix (name %q)", name)
		}
	})
}

func TestMatchRoute(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"a.example", "a.example", true},
		{"A.Example", "a.example", true},
		{"a.example", "b.example", false},
		{"*.example", "a.example", true},
		{"*.example", "x.y.example", true},
		{"*.example", "example", false},
		{"*.example", "aexample", false},
		{"*.Example", "a.example", true},
		{"*.example", "A.EXAMPLE", true},        // names from a terminated handshake are not lowercased
		{"mail.example.", "mail.example", true}, // a route written as in a zone file
		{"mail.example", "mail.example.", true},
		{"*.example.", "a.example", true},
		{"k.example", "\u212a.example", false}, // the Kelvin sign is not K: ASCII case only
		{"\u212a.example", "k.example", false},
	} {
		if got := matchRoute(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchRoute(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

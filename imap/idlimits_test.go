package imap_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
)

// TestIDNUL: an ID field with a NUL (literal data is CHAR8, %x01-ff, RFC
// 9051) is refused with BAD, and the backend's ID never carries it.
func TestIDNUL(t *testing.T) {
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] fake ready\r\n")
		fc.answerIDThenLogin(got, " OK Logged in\r\n")
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a ID (\"name\" {3+}\r\na\x00b)\r\n")
	if l := c.expectPrefix("a "); l != "a BAD ID fields must not hold NUL" {
		t.Errorf("ID with a NUL in a literal: %q", l)
	}
	c.send("b LOGIN u@x.test pw\r\n")
	c.expectPrefix("b ")
	for _, v := range got.next(t).Args[0].List {
		if strings.Contains(v.Str, "\x00") {
			t.Errorf("the backend's ID holds %q", v.Str)
		}
	}
}

// TestIDThirtyPairs: the ID the backend gets has at most 30 field-value
// pairs (RFC 2971 section 3.3): after the proxy's own six, the client's
// first 24 of its 30.
func TestIDThirtyPairs(t *testing.T) {
	idLine := make(chan string, 1)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] fake ready\r\n")
		line, err := fc.rd.ReadLine() // raw: wire.Reader takes at most 64 values
		if err != nil {
			idLine <- ""
			return
		}
		idLine <- string(line)
		tag, _, _ := strings.Cut(string(line), " ")
		fc.send("* ID NIL\r\n" + tag + " OK ID done\r\n")
		fc.answerIDThenLogin(nil, " OK Logged in\r\n")
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	var fields []string
	for i := range 30 {
		fields = append(fields, "\"f"+strconv.Itoa(i)+"\" \"v\"")
	}
	c.send("a ID (" + strings.Join(fields, " ") + ")\r\n")
	if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("ID of 30 pairs: %q", l)
	}
	c.send("b LOGIN u@x.test pw\r\n")
	c.expectPrefix("b ")
	line := <-idLine
	if n := strings.Count(line, "\"") / 4; n != 30 || !strings.Contains(line, `"f23" "v"`) || strings.Contains(line, `"f24"`) {
		t.Errorf("the backend's ID has %d pairs (want 30, the client's f0 to f23):\n%s", n, line)
	}
}

// TestLoginOKWithoutCapabilities: a backend whose login OK and whose
// CAPABILITY answer list no capability gives the client a plain OK: a
// CAPABILITY response code needs at least one (RFC 9051).
func TestLoginOKWithoutCapabilities(t *testing.T) {
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
		fc.answerIDThenLogin(nil, " OK Logged in\r\n") // CAPABILITY then gets no list
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN u@x.test pw\r\n")
	if l := c.expectPrefix("a "); l != "a OK Logged in" {
		t.Errorf("got %q", l)
	}
}

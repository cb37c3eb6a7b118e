package tlsrec

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tlsPair is a TLS 1.3 (unless max says otherwise) connection over loopback
// TCP with its handshake done, and the raw sockets under both ends.
type tlsPair struct {
	client, server       *tls.Conn
	rawClient, rawServer net.Conn
}

func newTLSPair(t *testing.T, maxVersion uint16) *tlsPair {
	t.Helper()
	ca := tlstest.NewCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	rc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rs := <-accepted
	if rs == nil {
		t.Fatal("accept failed")
	}
	p := &tlsPair{rawClient: rc, rawServer: rs}
	t.Cleanup(func() { rc.Close(); rs.Close() })
	p.server = tls.Server(rs, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}, MaxVersion: maxVersion})
	p.client = tls.Client(rc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MaxVersion: maxVersion})
	errc := make(chan error, 1)
	go func() { errc <- p.server.Handshake() }()
	if err := p.client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return p
}

// chat moves a few messages through crypto/tls both ways, so that the
// sequence numbers are no longer zero (and the client has read the
// server's session tickets).
func (p *tlsPair) chat(t *testing.T) {
	t.Helper()
	for i := range 3 {
		msg := []byte{'m', byte('0' + i)}
		if _, err := p.client.Write(msg); err != nil {
			t.Fatal(err)
		}
		readExactly(t, p.server, msg)
		if _, err := p.server.Write(msg); err != nil {
			t.Fatal(err)
		}
		readExactly(t, p.client, msg)
	}
}

func readExactly(t *testing.T, r io.Reader, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// exportBoth exports both ends of p.
func (p *tlsPair) exportBoth(t *testing.T) (client, server *State) {
	t.Helper()
	cs, err := Export(p.client)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	return cs, ss
}

// requestUpdate seals a KeyUpdate that asks the peer for one, and moves
// st's sending key on.
func requestUpdate(t *testing.T, st *State) []byte {
	t.Helper()
	out, err := st.seal(nil, []byte{msgKeyUpdate, 0, 0, 1, 1}, typeHandshake)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.out.update(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openAll reads raw records from c until it has n bytes of application
// data or sees a close_notify.
func openAll(t *testing.T, st *State, c net.Conn, n int) (data []byte, closed bool) {
	t.Helper()
	return openUntil(t, st, c, func(got []byte, closed bool) bool { return len(got) >= n || closed })
}

// openUntil reads and opens records from c until done(plaintext so far,
// close_notify seen).
func openUntil(t *testing.T, st *State, c net.Conn, done func([]byte, bool) bool) (data []byte, closed bool) {
	t.Helper()
	buf := make([]byte, 0, 64<<10)
	for !done(data, closed) {
		m, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			t.Fatalf("raw read after %d bytes: %v", len(data), err)
		}
		buf = buf[:len(buf)+m]
		for !closed {
			used, kind, plain, err := st.Open(buf)
			if err != nil {
				t.Fatal(err)
			}
			if used == 0 {
				break
			}
			switch kind {
			case KindData:
				data = append(data, plain...)
			case KindCloseNotify:
				closed = true
			}
			buf = buf[:copy(buf, buf[used:])]
		}
	}
	return data, closed
}

func TestServerSideCarriesOn(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	p.chat(t)
	st, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	// The crypto/tls client sends; the exported server opens.
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several records
	go p.client.Write(big)
	got, _ := openAll(t, st, p.rawServer, len(big))
	if !bytes.Equal(got, big) {
		t.Fatalf("opened %d bytes, want the %d sent", len(got), len(big))
	}
	// The exported server seals; the crypto/tls client reads.
	out, err := st.Seal(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	go p.rawServer.Write(out)
	readExactly(t, p.client, big)

	// close_notify both ways.
	if err := p.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, closed := openAll(t, st, p.rawServer, 1); !closed {
		t.Fatal("no close_notify opened")
	}
	out, err = st.SealCloseNotify(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rawServer.Write(out); err != nil {
		t.Fatal(err)
	}
	if n, err := p.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after close_notify: %d, %v; want io.EOF", n, err)
	}
}

func TestClientSideKeyUpdateWithCryptoTLSServer(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	p.chat(t)
	st, err := Export(p.client)
	if err != nil {
		t.Fatal(err)
	}
	// Ask crypto/tls for a key update, then send data under the new key.
	out := requestUpdate(t, st)
	out, err = st.Seal(out, []byte("after update"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rawClient.Write(out); err != nil {
		t.Fatal(err)
	}
	readExactly(t, p.server, []byte("after update"))
	// crypto/tls answered with its own KeyUpdate, before this reply.
	go p.server.Write([]byte("reply"))
	got, _ := openAll(t, st, p.rawClient, 5)
	if string(got) != "reply" {
		t.Fatalf("opened %q, want reply", got)
	}
	if st.in.seq != 1 || st.out.seq != 1 {
		t.Fatalf("sequence numbers in %d out %d after the update, want 1 and 1", st.in.seq, st.out.seq)
	}
}

func TestKeyUpdateRequestedIsAnswered(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	p.chat(t)
	cs, ss := p.exportBoth(t)
	out := requestUpdate(t, cs)
	out, _ = cs.Seal(out, []byte("ping"))
	go p.rawClient.Write(out)
	if got, _ := openAll(t, ss, p.rawServer, 4); string(got) != "ping" {
		t.Fatalf("server opened %q", got)
	}
	if !ss.answerUpdate {
		t.Fatal("requested update not noted")
	}
	out, _ = ss.Seal(nil, []byte("pong"))
	if ss.answerUpdate {
		t.Fatal("update not sent with the next records")
	}
	go p.rawServer.Write(out)
	if got, _ := openAll(t, cs, p.rawClient, 4); string(got) != "pong" {
		t.Fatalf("client opened %q", got)
	}
}

func TestTamperedRecordFails(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	cs, ss := p.exportBoth(t)
	rec, _ := cs.Seal(nil, []byte("secret"))
	rec[len(rec)-1] ^= 1
	if _, _, _, err := ss.Open(rec); err == nil {
		t.Fatal("a tampered record opened")
	}
	// Half a record is not an error: Open waits for the rest.
	rec2, _ := cs.Seal(nil, []byte("x"))
	if used, _, _, err := ss.Open(rec2[:len(rec2)-1]); used != 0 || err != nil {
		t.Fatalf("partial record: used %d, err %v", used, err)
	}
}

func TestExportRefuses(t *testing.T) {
	t.Run("TLS 1.2", func(t *testing.T) {
		p := newTLSPair(t, tls.VersionTLS12)
		if _, err := Export(p.server); !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrVersion) {
			t.Fatalf("Export of TLS 1.2: %v, want ErrVersion", err)
		}
	})
	t.Run("buffered plaintext", func(t *testing.T) {
		p := newTLSPair(t, 0)
		if _, err := p.client.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		readExactly(t, p.server, []byte("01234")) // the rest stays in crypto/tls
		want := ErrBuffered
		if !Supported {
			want = ErrGoRelease
		}
		if _, err := Export(p.server); !errors.Is(err, ErrUnsupported) || !errors.Is(err, want) {
			t.Fatalf("Export with buffered plaintext: %v, want %v", err, want)
		}
		readExactly(t, p.server, []byte("56789")) // and the conn still works
	})
	t.Run("before handshake", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if _, err := Export(tls.Client(a, &tls.Config{})); !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrState) {
			t.Fatalf("Export before the handshake: %v, want ErrState", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	s, _ := suiteByID(tls.TLS_AES_128_GCM_SHA256)
	secret := bytes.Repeat([]byte{7}, 32)
	seal := &State{}
	seal.out.setSecret(s, bytes.Clone(secret), 0)
	rec, _ := seal.Seal(nil, []byte("hello"))
	f.Add(rec)
	f.Add([]byte{23, 3, 3, 0, 17})
	f.Add([]byte{23, 3, 3, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, wire []byte) {
		st, st2 := &State{}, &State{}
		if err := st.in.setSecret(s, bytes.Clone(secret), 0); err != nil {
			t.Fatal(err)
		}
		if err := st2.in.setSecret(s, bytes.Clone(secret), 0); err != nil {
			t.Fatal(err)
		}
		orig := bytes.Clone(wire) // Open changes wire; OpenAppend opens this copy
		for range 4 {
			used2, kind2, plain2, err2 := st2.OpenAppend(nil, orig)
			used, kind, plain, err := st.Open(wire)
			if used != used2 || kind != kind2 || !bytes.Equal(plain, plain2) || (err == nil) != (err2 == nil) {
				t.Fatalf("Open: %d %v %q %v; OpenAppend: %d %v %q %v", used, kind, plain, err, used2, kind2, plain2, err2)
			}
			if err != nil || used == 0 {
				return
			}
			wire, orig = wire[used:], orig[used:]
		}
	})
}

// TestExportHandsOverUnreadRecords: records crypto/tls has read from the
// socket but not opened come back in State.Unread, ready to open.
func TestExportHandsOverUnreadRecords(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	p.chat(t)
	cs, err := Export(p.client)
	if err != nil {
		t.Fatal(err)
	}
	two, _ := cs.Seal(nil, []byte("aaaa"))
	two, _ = cs.Seal(two, []byte("bbbb"))
	if _, err := p.rawClient.Write(two); err != nil { // one write: both records arrive together
		t.Fatal(err)
	}
	readExactly(t, p.server, []byte("aaaa"))
	ss, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Unread) == 0 {
		t.Skip("the second record came in a later segment: nothing to hand over this time")
	}
	used, kind, plain, err := ss.Open(ss.Unread)
	if err != nil || kind != KindData || string(plain) != "bbbb" || used != len(ss.Unread) {
		t.Fatalf("Open(Unread) = %d, %v, %q, %v; want the whole second record", used, kind, plain, err)
	}
}

// TestOpenRefuses: what has no place after the handshake ends the
// connection; user_canceled is passed over.
func TestOpenRefuses(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	cs, ss := p.exportBoth(t)
	seal := func(content []byte, typ byte) []byte {
		out, err := cs.seal(nil, content, typ)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if used, kind, _, err := ss.Open(seal([]byte{1, 90}, typeAlert)); err != nil || used == 0 || kind != KindNone {
		t.Fatalf("user_canceled: %d, %v, %v; want passed over", used, kind, err)
	}
	for _, c := range []struct {
		name string
		rec  []byte
	}{
		{"fatal alert", seal([]byte{2, 40}, typeAlert)},
		{"ClientHello after the handshake", seal([]byte{1, 0, 0, 0}, typeHandshake)},
		{"KeyUpdate split across records", seal([]byte{msgKeyUpdate, 0, 0}, typeHandshake)},
		{"change_cipher_spec", []byte{20, 3, 3, 0, 1, 1}},
		{"oversized record", append([]byte{23, 3, 3, 0x41, 0x01}, make([]byte, 0x4101)...)},
	} {
		if _, _, _, err := ss.Open(c.rec); err == nil {
			t.Errorf("%s: opened without error", c.name)
		}
	}
}

// TestOpenAppend: records opened with OpenAppend give their plaintext in
// one piece in dst, leave the wire as it was, and handle KeyUpdate and
// close_notify as Open does.
func TestOpenAppend(t *testing.T) {
	sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	big := bytes.Repeat([]byte("0123456789abcdef"), 2000) // two records
	wire, err := sealer.Seal(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	wire = append(wire, requestUpdate(t, sealer)...)
	if wire, err = sealer.Seal(wire, []byte("after the update")); err != nil {
		t.Fatal(err)
	}
	if wire, err = sealer.SealCloseNotify(wire); err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(wire)
	dst := []byte("prefix:")
	var kinds []Kind
	for off := 0; off < len(wire); {
		used, kind, out, err := opener.OpenAppend(dst, wire[off:])
		if err != nil || used == 0 {
			t.Fatalf("OpenAppend at %d: used %d, %v", off, used, err)
		}
		if kind != KindData && len(out) != len(dst) {
			t.Fatalf("a record of kind %v changed dst's length from %d to %d", kind, len(dst), len(out))
		}
		off += used
		dst = out
		kinds = append(kinds, kind)
	}
	want := "prefix:" + string(big) + "after the update"
	if string(dst) != want {
		t.Fatalf("opened %d bytes, want %d", len(dst), len(want))
	}
	if !bytes.Equal(wire, orig) {
		t.Fatal("OpenAppend changed the wire")
	}
	wantKinds := []Kind{KindData, KindData, KindNone, KindData, KindCloseNotify}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("kinds %v, want %v", kinds, wantKinds)
	}
	if !opener.answerUpdate {
		t.Fatal("requested update not noted")
	}
	// A tampered record fails and leaves dst's length as it was.
	rec, _ := sealer.Seal(nil, []byte("x"))
	rec[len(rec)-1] ^= 1
	if _, _, out, err := opener.OpenAppend(dst[:3], rec); err == nil || len(out) != 3 {
		t.Fatalf("tampered record: %d bytes out, %v; want an error and dst as it was", len(out), err)
	}
}

package tlsrec

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"testing"
)

// TestStateRoundTrip: a State encoded and parsed again (as a pipe handed
// to another process) carries on the connection: the crypto/tls client
// reads what it seals and it opens what the client sends, across a
// KeyUpdate that was due at the hand-over.
func TestStateRoundTrip(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	p.chat(t)
	st, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	st.answerUpdate = true // as if the client had asked for a KeyUpdate: due at the hand-over
	st.Unread = []byte("partial record")
	enc := st.AppendBinary([]byte("prefix"))
	st.Wipe()
	got, n, err := ParseState(append(enc[len("prefix"):], "trailer"...))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(enc)-len("prefix") || string(got.Unread) != "partial record" {
		t.Fatalf("parsed %d of %d bytes, Unread %q", n, len(enc)-len("prefix"), got.Unread)
	}
	if !got.answerUpdate || got.isClient {
		t.Fatal("flags lost on the way")
	}
	got.Unread = nil
	out, err := got.Seal(nil, []byte("after the hand-over"))
	if err != nil {
		t.Fatal(err)
	}
	go p.rawServer.Write(out)
	readExactly(t, p.client, []byte("after the hand-over"))
	go p.client.Write([]byte("and back"))
	if data, _ := openAll(t, got, p.rawServer, 8); string(data) != "and back" {
		t.Fatalf("opened %q", data)
	}
}

// TestParseStateRefuses: truncated, foreign or inconsistent encodings are
// errors, never panics.
func TestParseStateRefuses(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	st, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	enc := st.AppendBinary(nil)
	for n := range len(enc) {
		if _, _, err := ParseState(enc[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	bad := bytes.Clone(enc)
	bad[0] = stateVersion + 1
	if _, _, err := ParseState(bad); err == nil {
		t.Fatal("other version: no error")
	}
	bad = bytes.Clone(enc)
	bad[2] ^= 0xff // suite
	if _, _, err := ParseState(bad); err == nil {
		t.Fatal("unknown suite: no error")
	}
	bad = bytes.Clone(enc)
	bad[3] = 0x80 // flags
	if _, _, err := ParseState(bad); err == nil {
		t.Fatal("unknown flags: no error")
	}
}

// TestStateWipe: Wipe zeroes the secrets and Unread in place.
func TestStateWipe(t *testing.T) {
	needSupported(t)
	p := newTLSPair(t, 0)
	st, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	in, out := st.in.secret, st.out.secret
	st.Unread = []byte("secret-ish")
	unread := st.Unread
	st.Wipe()
	for _, b := range [][]byte{in, out, unread} {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatalf("not zeroed: %x", b)
		}
	}
	if _, err := st.out.nonce(); err == nil {
		t.Fatal("a wiped State still makes nonces")
	}
}

// TestWipeKeySchedules: Wipe and a KeyUpdate zero the AEADs' expanded keys
// (AES key schedule and GCM tables, the ChaCha20 key) in place, for every
// suite; the AEADs were in use and not zero before.
func TestWipeKeySchedules(t *testing.T) {
	for _, id := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		t.Run(tls.CipherSuiteName(id), func(t *testing.T) {
			s, err := suiteByID(id)
			if err != nil {
				t.Fatal(err)
			}
			secret := func(b byte) []byte { return bytes.Repeat([]byte{b}, s.hash().Size()) }
			st := &State{}
			if err := st.in.setSecret(s, secret(1), 0); err != nil {
				t.Fatal(err)
			}
			if err := st.out.setSecret(s, secret(2), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Seal(nil, []byte("in use")); err != nil {
				t.Fatal(err)
			}
			zero := func(a any) bool { return reflect.ValueOf(a).Elem().IsZero() }
			old := st.out.aead
			if err := st.out.update(); err != nil {
				t.Fatal(err)
			}
			if !zero(old) {
				t.Fatal("a KeyUpdate left the old AEAD's key in memory")
			}
			aeads := []any{st.in.aead, st.out.aead}
			for _, a := range aeads {
				if zero(a) {
					t.Fatalf("%T is zero before Wipe", a)
				}
			}
			st.Wipe()
			for _, a := range aeads {
				if !zero(a) {
					t.Fatalf("%T not zeroed by Wipe", a)
				}
			}
		})
	}
}

package tlsrec

import (
	"crypto/tls"
	"encoding/binary"
	"testing"
)

// newSessionTicket is a well-formed TLS 1.3 NewSessionTicket (RFC 8446 4.6.1):
// lifetime, age_add, nonce, a ticket of ticketLen bytes, no extensions.
func newSessionTicket(ticketLen int) []byte {
	body := []byte{0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 0}
	body = binary.BigEndian.AppendUint16(body, uint16(ticketLen))
	body = append(body, make([]byte, ticketLen)...)
	body = append(body, 0, 0) // extensions
	msg := []byte{msgNewSessionTicket, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// TestFragmentedTicket: RFC 8446 section 5.1 lets a peer fragment a
// handshake message across records; crypto/tls reassembles them. A
// backend's NewSessionTicket split in two records does not end the pair.
func TestFragmentedTicket(t *testing.T) {
	needSupported(t)
	// The reference: a crypto/tls client reads past a split ticket.
	p := newTLSPair(t, 0)
	p.chat(t)
	ss, err := Export(p.server)
	if err != nil {
		t.Fatal(err)
	}
	nst := newSessionTicket(200)
	var ref []byte
	for _, part := range [][]byte{nst[:100], nst[100:]} {
		if ref, err = ss.seal(ref, part, typeHandshake); err != nil {
			t.Fatal(err)
		}
	}
	ref, _ = ss.Seal(ref, []byte("after"))
	go p.rawServer.Write(ref)
	readExactly(t, p.client, []byte("after"))

	sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	opener.isClient = true // NewSessionTicket goes server -> client
	msg := newSessionTicket(200)
	var wire []byte
	for _, part := range [][]byte{msg[:100], msg[100:]} {
		if wire, err = sealer.seal(wire, part, typeHandshake); err != nil {
			t.Fatal(err)
		}
	}
	if wire, err = sealer.Seal(wire, []byte("after")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for off := 0; off < len(wire); {
		used, kind, plain, err := opener.Open(wire[off:])
		if err != nil {
			t.Fatalf("record at %d: %v (a NewSessionTicket fragmented across two records is valid TLS 1.3)", off, err)
		}
		if used == 0 {
			t.Fatalf("record at %d: not opened", off)
		}
		if kind == KindData {
			got = append(got, plain...)
		}
		off += used
	}
	if string(got) != "after" {
		t.Fatalf("data after the ticket: %q", got)
	}
}

// TestFragmentedTicketSplits: a ticket split anywhere (inside its
// header, in three parts) is skipped, also when the State is handed over
// between its fragments (AppendBinary, ParseState); a data record between
// fragments, or a fragment on the server side, ends the connection.
func TestFragmentedTicketSplits(t *testing.T) {
	msg := newSessionTicket(300)
	for _, cuts := range [][]int{{2}, {4}, {1, 3}, {100, 200}, {3, 150}} {
		sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
		opener.isClient = true
		suite, err := suiteByID(tls.TLS_AES_128_GCM_SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := opener.out.setSecret(suite, make([]byte, suite.hash().Size()), 0); err != nil { // for AppendBinary
			t.Fatal(err)
		}
		var recs [][]byte
		prev := 0
		for _, c := range append(cuts, len(msg)) {
			rec, err := sealer.seal(nil, msg[prev:c], typeHandshake)
			if err != nil {
				t.Fatal(err)
			}
			recs, prev = append(recs, rec), c
		}
		data, err := sealer.Seal(nil, []byte("after"))
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range recs {
			if _, kind, _, err := opener.Open(rec); err != nil || kind != KindNone {
				t.Fatalf("cuts %v: fragment %d: %v %v", cuts, i, kind, err)
			}
			if i == 0 { // hand the state over between fragments
				next, n, err := ParseState(opener.AppendBinary(nil))
				if err != nil || !next.fragmented() {
					t.Fatalf("cuts %v: state after the first fragment: %v (%d bytes), fragmented %v", cuts, err, n, next != nil && next.fragmented())
				}
				opener = next
			}
		}
		if _, kind, plain, err := opener.Open(data); err != nil || kind != KindData || string(plain) != "after" {
			t.Fatalf("cuts %v: data after the ticket: %v %q %v", cuts, kind, plain, err)
		}
	}
	sealer, opener := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	opener.isClient = true
	first, _ := sealer.seal(nil, msg[:10], typeHandshake)
	data, _ := sealer.Seal(nil, []byte("inside"))
	if _, _, _, err := opener.Open(first); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := opener.Open(data); err == nil {
		t.Error("data between a ticket's fragments: opened")
	}
	sealer, server := pairedStates(t, tls.TLS_AES_128_GCM_SHA256)
	first, _ = sealer.seal(nil, msg[:10], typeHandshake)
	if _, _, _, err := server.Open(first); err == nil {
		t.Error("a fragmented ticket to a server: opened")
	}
}

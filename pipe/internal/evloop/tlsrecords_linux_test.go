package evloop

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// captureConn passes writes through to the socket until capture is set,
// then keeps them: a test sends crypto/tls's records when and cut as it
// likes.
type captureConn struct {
	net.Conn
	capture bool
	kept    bytes.Buffer
}

func (c *captureConn) Write(b []byte) (int, error) {
	if c.capture {
		return c.kept.Write(b)
	}
	return c.Conn.Write(b)
}

// TestTLSPartialRecordDetached: records read with part of the next one
// behind them (the read after the pair was added gets them all): the
// whole ones reach B, the partial one stays where it was read (one record
// before it) or moves to the front of the buffer (three), and a Detach
// hands exactly its bytes over as Unread; the adopted pair opens it once
// the rest arrives.
func TestTLSPartialRecordDetached(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("tlsrec does not read this Go release's crypto/tls")
	}
	for _, records := range []int{1, 3} {
		t.Run(strconv.Itoa(records), func(t *testing.T) { testTLSPartialRecordDetached(t, records) })
	}
}

func testTLSPartialRecordDetached(t *testing.T, records int) {
	g := newGroup(t, Config{Loops: 1})
	ca := tlstest.NewCA(t)
	raw, a := socketPair(t, "tcp")
	b, c2 := socketPair(t, "tcp")
	t.Cleanup(func() { raw.Close(); c2.Close() })
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}})
	cc := &captureConn{Conn: raw}
	cli := tls.Client(cc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", DynamicRecordSizingDisabled: true})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	plainWhole := records * tlsrec.MaxPlaintext
	data := make([]byte, plainWhole+1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cc.capture = true
	if _, err := cli.Write(data); err != nil {
		t.Fatal(err)
	}
	cc.capture = false
	wire := cc.kept.Bytes()
	// Whole records up to the last one, and half of that.
	whole := 0
	for {
		n := tlsrec.HeaderLen + int(binary.BigEndian.Uint16(wire[whole+3:]))
		if whole+n == len(wire) {
			break
		}
		whole += n
	}
	cut := whole + (len(wire)-whole)/2
	if _, err := raw.Write(wire[:cut]); err != nil {
		t.Fatal(err)
	}

	ea, eb, err := TakeConns(Conn{Sock: a, TLS: srv}, Conn{Sock: b})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := g.AddWithPrefix(ea, eb, nil, nil, core.Options{}, func(r core.Result) {
		t.Errorf("done called for a detached pair: %+v", r)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, plainWhole)
	if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, data[:plainWhole]) {
		t.Fatalf("B read %d bytes (%v), not the whole records' plaintext", len(got), err)
	}

	snaps, errs := g.Detach([]Pair{pr})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	s := snaps[0]
	if st := s.TLS[0]; st == nil || !bytes.Equal(st.Unread, wire[whole:cut]) {
		t.Fatalf("snapshot's Unread is not the partial record's %d bytes", cut-whole)
	}
	if s.Dirs[0].Bytes != int64(plainWhole) || len(s.Dirs[0].Pending) != 0 {
		t.Fatalf("snapshot A→B: %d bytes written, %d pending", s.Dirs[0].Bytes, len(s.Dirs[0].Pending))
	}

	ea, err = EndpointFromFD(s.A, s.TLS[0])
	if err != nil {
		t.Fatal(err)
	}
	eb, err = EndpointFromFD(s.B, nil)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan core.Result, 1)
	if _, err := g.AddSnapshot(ea, eb, s, func(r core.Result) { results <- r }); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write(wire[cut:]); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len(data)-plainWhole)
	if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, data[plainWhole:]) {
		t.Fatalf("B read %d bytes (%v) after the adoption, not the last record's plaintext", len(got), err)
	}
	if err := cli.CloseWrite(); err != nil { // close_notify: A→B ends
		t.Fatal(err)
	}
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("B read %d, %v after close_notify; want EOF", n, err)
	}
	closeWrite(t, c2)
	if n, err := cli.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %d, %v after B's EOF; want EOF", n, err)
	}
	r := <-results
	expect(t, r, core.SideA, core.ReasonEOF)
	if r.BytesAToB != int64(len(data)) || r.BytesBToA != 0 {
		t.Fatalf("result %+v, want %d bytes A→B", r, len(data))
	}
}

// TestTLSKeyUpdateThroughTheLoop: openssl s_client on A asks for a
// KeyUpdate; the loop opens it from A's records, answers it in the first
// records it seals for A (B→A), and both sides go on under the new keys.
func TestTLSKeyUpdateThroughTheLoop(t *testing.T) {
	if !tlsrec.Supported {
		t.Skip("tlsrec does not read this Go release's crypto/tls")
	}
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatal("openssl not installed (apt-get install -y openssl)")
		}
		t.Skip("openssl not installed")
	}
	g := newGroup(t, Config{Loops: 1})
	ca := tlstest.NewCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(bin, "s_client", "-tls1_3", "-connect", ln.Addr().String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout // s_client says KEYUPDATE there
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, c2 := socketPair(t, "tcp")
	t.Cleanup(func() { c2.Close() })
	_ = c2.SetDeadline(time.Now().Add(20 * time.Second))
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}})
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = a.SetDeadline(time.Time{})
	ea, eb, err := TakeConns(Conn{Sock: a, TLS: srv}, Conn{Sock: b})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan core.Result, 1)
	if err := g.Add(ea, eb, core.Options{}, func(r core.Result) { results <- r }); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(stdout)
	fromB := bufio.NewReader(c2)
	say := func(line string) {
		t.Helper()
		if _, err := stdin.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		if got, err := fromB.ReadString('\n'); err != nil || got != line+"\n" {
			t.Fatalf("B read %q, %v; want %q", got, err, line)
		}
	}
	reply := func(line string) {
		t.Helper()
		if _, err := c2.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		waitLine(t, lines, line)
	}
	say("ping from openssl")
	reply("hello from B")
	if _, err := stdin.Write([]byte("K\n")); err != nil { // KeyUpdate, update_requested
		t.Fatal(err)
	}
	waitLine(t, lines, "KEYUPDATE") // else the next line may come in the same read, and go with it
	say("after the update")
	reply("reply under new keys")
	say("and once more")
	reply("done")
	closeWrite(t, c2) // close_notify to s_client, which then ends its side
	r := <-results
	if r.Reason != core.ReasonEOF {
		t.Fatalf("result %+v, want EOF", r)
	}
	if r.Err != nil {
		t.Fatalf("result error: %v", r.Err)
	}
}

// waitLine reads s_client's output until a line equal to want.
func waitLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	for range 200 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("s_client output ended before %q: %v", want, err)
		}
		if strings.TrimRight(line, "\r\n") == want {
			return
		}
	}
	t.Fatalf("no line %q from s_client", want)
}

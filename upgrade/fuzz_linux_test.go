package upgrade

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The hand-over channel's decoders, fuzzed: the frame header, the frame
// stream as Recv reads it from a peer, and the listeners' message. The
// peer is the other process of a binary upgrade; whatever it sends, the
// receiver returns an error or a message within the bounds, never panics
// and leaks no descriptor.

// fuzzMetaMax bounds the metadata and streams the fuzzers write at once:
// within a socket's buffer, so that a write never waits for the reader.
const fuzzMetaMax = 64 << 10

// seedFrames are frames this package sends: the greeting, the listeners,
// the verdicts, and a caller's message with files.
func seedFrames(t testing.TB) [][]byte {
	hello, err := json.Marshal(helloMeta{Protocol: protocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	names, err := json.Marshal(listenersMeta{Names: []string{"listen[0] 127.0.0.1:143", "listen[1] 127.0.0.1:993"}})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{
		appendFrame(nil, kindHello, hello, 0),
		appendFrame(nil, kindListeners, names, 2),
		appendFrame(nil, kindReady, nil, 0),
		appendFrame(nil, kindFailed, []byte("config: no such file"), 0),
		appendFrame(nil, kindRefused, []byte("an upgrade is already running"), 0),
		appendFrame(nil, "forward-pair", []byte(`{"pair":{"forward":"127.0.0.1:80"},"state":"UEdEUw=="}`), 2),
		appendFrame(nil, strings.Repeat("k", MaxKind), nil, MaxFiles),
	}
}

// FuzzParseHeader: a header is accepted exactly when its magic is right
// and its three counts are within the bounds, and then it is the header
// appendFrame makes for a message of those sizes, one Send would send.
func FuzzParseHeader(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr[:headerLen])
	}
	f.Add([]byte("PGUP\x00\x01\x00\x00\x00\x10\x00\x00")) // MaxMeta
	f.Add([]byte("PGUP\x00\x01\x00\x00\x00\x10\x00\x01")) // one over
	f.Add([]byte("PGUP\x00\x00\x00\x00\x00\x00\x00\x00")) // empty kind
	f.Add([]byte("PGUP\x00\x01\x00\x41\x00\x00\x00\x00")) // MaxFiles+1
	f.Add([]byte("HTTP/1.1 200"))
	zeros := make([]byte, MaxMeta) // the metadata of the re-encoded frame
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr := make([]byte, headerLen) // readFrame's: always headerLen bytes
		copy(hdr, b)
		kindLen := int(binary.BigEndian.Uint16(hdr[4:]))
		nfiles := int(binary.BigEndian.Uint16(hdr[6:]))
		metaLen := uint64(binary.BigEndian.Uint32(hdr[8:]))
		valid := string(hdr[:4]) == frameMagic && kindLen >= 1 && kindLen <= MaxKind &&
			metaLen <= MaxMeta && nfiles <= MaxFiles

		h, err := parseHeader(hdr)
		if (err == nil) != valid {
			t.Fatalf("parseHeader(%x): %v; the header is valid: %v", hdr, err, valid)
		}
		if err != nil {
			return
		}
		if h.kindLen != kindLen || h.nfiles != nfiles || uint64(h.metaLen) != metaLen {
			t.Fatalf("parseHeader(%x) = %+v", hdr, h)
		}
		// What the receiver accepts, the sender may send, and it sends
		// this very header.
		kind, meta := strings.Repeat("k", h.kindLen), zeros[:h.metaLen]
		if err := checkMessage(kind, meta, h.nfiles); err != nil {
			t.Fatalf("header %x accepted, but its message cannot be sent: %v", hdr, err)
		}
		if again := appendFrame(nil, kind, meta, h.nfiles)[:headerLen]; !bytes.Equal(again, hdr) {
			t.Fatalf("header %x re-encodes as %x", hdr, again)
		}
	})
}

// FuzzFrame: the sender's checks and the receiver's agree. checkMessage
// refuses a message exactly when it is out of bounds; a message it
// accepts makes a frame whose header parseHeader accepts with the
// message's sizes, followed by the kind (a valid one) and the metadata,
// and nothing else.
func FuzzFrame(f *testing.F) {
	f.Add(kindHello, []byte(`{"protocol":1}`), uint8(0))
	f.Add(kindListeners, []byte(`{"names":["a","b"]}`), uint8(2))
	f.Add("forward-pair", []byte(`{"pair":{},"state":""}`), uint8(MaxFiles))
	f.Add(strings.Repeat("k", MaxKind), []byte{}, uint8(MaxFiles+1))
	f.Add(strings.Repeat("k", MaxKind+1), []byte{}, uint8(0))
	f.Add("", []byte{}, uint8(0))
	f.Add("mail session", []byte{}, uint8(1))
	f.Add("é", []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, kind string, meta []byte, n uint8) {
		nfiles := int(n)
		printable := kind != "" && strings.IndexFunc(kind, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
		valid := printable && len(kind) <= MaxKind && len(meta) <= MaxMeta && nfiles <= MaxFiles
		err := checkMessage(kind, meta, nfiles)
		if (err == nil) != valid {
			t.Fatalf("checkMessage(%q, %d bytes, %d files): %v; the message is valid: %v", kind, len(meta), nfiles, err, valid)
		}
		if err != nil {
			return
		}
		fr := appendFrame(nil, kind, meta, nfiles)
		if len(fr) != headerLen+len(kind)+len(meta) {
			t.Fatalf("frame of %d bytes for a kind of %d and meta of %d", len(fr), len(kind), len(meta))
		}
		h, err := parseHeader(fr[:headerLen])
		if err != nil {
			t.Fatalf("the receiver refuses what the sender sends: %v", err)
		}
		if h.kindLen != len(kind) || h.metaLen != len(meta) || h.nfiles != nfiles {
			t.Fatalf("header %+v for kind %q, %d bytes of meta, %d files", h, kind, len(meta), nfiles)
		}
		body := fr[headerLen:]
		if got := string(body[:h.kindLen]); got != kind || checkKind(got) != nil {
			t.Fatalf("kind %q in the frame, sent %q", got, kind)
		}
		if !bytes.Equal(body[h.kindLen:], meta) {
			t.Fatal("metadata in the frame differs")
		}
	})
}

// FuzzRecv feeds a stream of bytes, with nfd descriptors attached to its
// first byte, to Recv, as a peer could send it. Every message Recv
// returns is within the bounds, and the messages re-encoded are the
// stream's beginning: Recv neither invents nor skips bytes. It returns
// io.EOF exactly when the stream was whole messages, else another error,
// and then the same error again. The descriptors are handed out with the
// message that carried them or closed: none leaks.
func FuzzRecv(f *testing.F) {
	frames := seedFrames(f)
	for _, fr := range frames {
		f.Add(fr, uint8(0))
	}
	f.Add(frames[1], uint8(2))
	f.Add(slices.Concat(frames[0], frames[1], frames[2]), uint8(2))
	f.Add(slices.Concat(frames[2], frames[2], frames[3][:20]), uint8(0))
	f.Add(frames[1][:headerLen+3], uint8(2))
	f.Add(appendFrame(nil, "not printable", nil, 0), uint8(0)) // a kind Send refuses
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, n uint8) {
		if len(stream) > fuzzMetaMax {
			stream = stream[:fuzzMetaMax]
		}
		nfd := int(n % 4)
		c, peer := rawPair(t)
		before := openFDs(t)
		var fds []int
		for range nfd {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
		}
		var serr error
		if len(stream) > 0 {
			var oob []byte
			if nfd > 0 {
				oob = unix.UnixRights(fds...)
			}
			serr = unix.Sendmsg(peer, stream, oob, nil, 0)
		}
		closeFDs(fds)
		if serr != nil {
			t.Fatal(serr)
		}
		if err := unix.Shutdown(peer, unix.SHUT_WR); err != nil {
			t.Fatal(err)
		}

		var again []byte // the messages received, re-encoded
		got := 0         // descriptors received
		var err error
		for range len(stream)/headerLen + 1 {
			var kind string
			var meta []byte
			var files []*os.File
			kind, meta, files, err = c.Recv(context.Background())
			if err != nil {
				if files != nil {
					t.Fatalf("Recv failed (%v) and returned %d files", err, len(files))
				}
				break
			}
			if cerr := checkMessage(kind, meta, len(files)); cerr != nil {
				t.Fatalf("Recv returned a message out of bounds: %v", cerr)
			}
			again = appendFrame(again, kind, meta, len(files))
			got += len(files)
			closeFiles(files)
		}
		if err == nil {
			t.Fatalf("no error after %d bytes of %d", len(again), len(stream))
		}
		if !bytes.HasPrefix(stream, again) {
			t.Fatalf("messages received re-encode as\n%x\nnot a beginning of the stream\n%x", again, stream)
		}
		if whole := len(again) == len(stream); whole != (err == io.EOF) {
			t.Fatalf("Recv: %v after %d bytes of %d", err, len(again), len(stream))
		}
		if got != 0 && got != nfd {
			t.Fatalf("%d descriptors sent and %d received", nfd, got)
		}
		if _, _, _, err2 := c.Recv(context.Background()); err2 != err {
			t.Fatalf("Recv after %v: %v, want the same error", err, err2)
		}
		if after := openFDs(t); after != before {
			t.Fatalf("%d descriptors before, %d after: received ones leaked", before, after)
		}
	})
}

// FuzzRecvListeners: whatever names and files a peer sends as the
// listeners, RecvListeners returns an error or exactly one listener per
// file under the names sent (which were unique), and on error leaves no
// descriptor open.
func FuzzRecvListeners(f *testing.F) {
	for _, names := range [][]string{{"listen[0] 127.0.0.1:143"}, {"a", "b"}, {"a", "a"}, {}, {""}} {
		meta, err := json.Marshal(listenersMeta{Names: names})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(meta, uint8(len(names)))
	}
	f.Add([]byte(`{"names":null}`), uint8(0))
	f.Add([]byte(`{"names":["a"]}`), uint8(2))
	f.Add([]byte(`["a"]`), uint8(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		f.Fatal(err)
	}
	defer lf.Close()
	f.Fuzz(func(t *testing.T, meta []byte, n uint8) {
		if len(meta) > fuzzMetaMax {
			meta = meta[:fuzzMetaMax]
		}
		nfiles := int(n % 4)
		files := make([]*os.File, nfiles)
		for i := range files {
			files[i] = lf
		}
		oldc, newc := rawConnPair(t)
		before := openFDs(t)
		if err := oldc.Send(context.Background(), kindListeners, meta, files...); err != nil {
			t.Fatal(err)
		}
		ls, err := RecvListeners(context.Background(), newc)
		var m listenersMeta
		jerr := json.Unmarshal(meta, &m)
		if err != nil {
			if ls != nil {
				t.Fatalf("RecvListeners failed (%v) and returned %d listeners", err, len(ls))
			}
			if after := openFDs(t); after != before {
				t.Fatalf("%d descriptors before, %d after a refused message", before, after)
			}
			if jerr == nil && len(m.Names) == nfiles && !hasDuplicate(m.Names) {
				t.Fatalf("RecvListeners refused %d files named %q: %v", nfiles, m.Names, err)
			}
			return
		}
		defer func() {
			for _, l := range ls {
				l.Close()
			}
		}()
		if jerr != nil || len(m.Names) != nfiles || len(ls) != nfiles {
			t.Fatalf("RecvListeners accepted %d listeners for %d files named %q (%v)", len(ls), nfiles, m.Names, jerr)
		}
		for _, name := range m.Names {
			if ls[name] == nil {
				t.Fatalf("no listener %q in %v", name, ls)
			}
		}
	})
}

// rawConnPair is a Conn pair over a socketpair, without the greeting.
func rawConnPair(t *testing.T) (oldc, newc *Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cs[i], err = newConn(nc.(*net.UnixConn)); err != nil {
			nc.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { cs[i].Close() })
	}
	return cs[0], cs[1]
}

func hasDuplicate(names []string) bool {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return true
		}
		seen[n] = true
	}
	return false
}

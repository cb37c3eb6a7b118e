package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// errStalled stands for a peer that sends nothing more: a real
// connection would block.
var errStalled = errors.New("peer stalled")

type stalled struct{}

func (stalled) Read([]byte) (int, error) { return 0, errStalled }

// FuzzReadCommand: no panics; each command is within the limits; errors
// are *Error or I/O errors; the reader waits for more only while what it
// holds of the last line can still become a command within its limit.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"USER alice\r\nPASS a b c\r\nQUIT\r\n",
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"CAPA\nSTLS\n",
		"\r\n\x00\r\nQU\r\n",
		"AUTH " + strings.Repeat("A", 300),
		"USER " + strings.Repeat("x", 250) + "\r",
		"XCLIENT ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=3\r\nxclient\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("XCLIENT ADDR=::1 TTL=1\r\nXClient\r\n"), true)
	// authLong also lets XCLIENT through, as for a trusted client.
	f.Fuzz(func(t *testing.T, in []byte, authLong bool) {
		for _, stall := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(in)
			if stall {
				src = io.MultiReader(src, stalled{})
			}
			r := NewReader(bufio.NewReaderSize(src, 16))
			if authLong {
				r.MaxAuthLine = 400
				r.XClient = true
			}
			for range len(in) + 2 {
				cmd, err := r.ReadCommand()
				if err == nil {
					long := authLong && cmd.Name == "XCLIENT"
					if (len(cmd.Name) < 3 || len(cmd.Name) > 4) && !long || len(cmd.Rest) > r.maxAuthLine() {
						t.Fatalf("bad command %+v", cmd)
					}
					if strings.ContainsAny(cmd.Rest, "\r\n\x00") {
						t.Fatalf("control bytes in %q", cmd.Rest)
					}
					if long {
						checkXClient(t, cmd.Args)
					}
					continue
				}
				var we *Error
				if errors.As(err, &we) {
					if we.Text == "" || bytes.Count(we.Reply(), []byte("\n")) != 1 {
						t.Fatalf("bad error %+v", we)
					}
					if we.Fatal {
						break
					}
					continue
				}
				if stall && errors.Is(err, errStalled) {
					tail := in[bytes.LastIndexByte(in, '\n')+1:]
					if n := len(bytes.TrimSuffix(tail, []byte("\r"))); n > r.commandLimit(tail) {
						t.Fatalf("waiting for more after %d bytes without a line end", n)
					}
					break
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %T: %v", err, err)
				}
				break
			}
		}
	})
}

// FuzzReadSASLResponse: a line comes back whole and within the limit, an
// over-long one is refused as soon as the limit is passed, nothing past
// the line is consumed, and decoding never panics.
func FuzzReadSASLResponse(f *testing.F) {
	for _, s := range []string{"AGFsaWNlAHNlY3JldA==\r\n", "*\r\n", strings.Repeat("x", 18) + "\r\n", strings.Repeat("x", 19) + "\n", "a\x00\r\n", "=\r\n"} {
		f.Add([]byte(s))
	}
	const limit = 20 // CRLF included
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(in), stalled{}), 16)
		r := NewReader(br)
		r.MaxSASLLine = limit
		line, err := r.ReadSASLResponse()
		end := bytes.IndexByte(in, '\n')
		tooLong := len(bytes.TrimSuffix(in, []byte("\r"))) > limit-2
		var want []byte
		if end >= 0 {
			want = trimEOL(in[:end+1])
			tooLong = len(want) > limit-2
		}
		var we *Error
		switch {
		case err == nil:
			if tooLong || end < 0 || !bytes.Equal(line, want) {
				t.Fatalf("got %q from %q", line, in)
			}
			rest, _ := io.ReadAll(io.LimitReader(br, int64(len(in))))
			if !bytes.Equal(rest, in[end+1:]) {
				t.Fatalf("left %q after the line, want %q", rest, in[end+1:])
			}
			data, cancel, derr := DecodeResponse(line)
			if derr == nil && !cancel && len(data) > len(line) {
				t.Fatalf("decoded %d bytes from %d", len(data), len(line))
			}
			_, _ = DecodeInitialResponse(string(line))
		case errors.As(err, &we):
			if !we.Fatal || !tooLong {
				t.Fatalf("%v for %q", err, in)
			}
		case errors.Is(err, errStalled):
			if end >= 0 || tooLong {
				t.Fatalf("waiting for more after %q", in)
			}
		default:
			t.Fatalf("unexpected error %T: %v", err, err)
		}
	})
}

// FuzzReadMultiLine: no panics, bounded results, and a response written by
// Append reads back the same.
func FuzzReadMultiLine(f *testing.F) {
	for _, s := range []string{
		"+OK caps\r\nSASL PLAIN\r\n..x\r\n.\r\n",
		"-ERR [SYS/TEMP] x\r\n",
		"+ abc\r\n",
		"+OK [\r\n.\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		for range len(in) + 1 {
			r, err := ReadMultiLine(br, 100, 10)
			if err != nil {
				break
			}
			if len(r.Lines) > 10 {
				t.Fatalf("%d lines", len(r.Lines))
			}
			if r.Status == StatusContinue {
				continue
			}
			again, err := ReadMultiLine(bufio.NewReader(bytes.NewReader(r.Append(nil))), 1000, 10)
			if err != nil {
				t.Fatalf("%+v written as %q: %v", r, r.Append(nil), err)
			}
			if again.Status != r.Status || again.Code != r.Code || len(again.Lines) != len(r.Lines) {
				t.Fatalf("%+v read back as %+v", r, again)
			}
			for i := range r.Lines {
				if again.Lines[i] != clean(r.Lines[i]) {
					t.Fatalf("line %q read back as %q", r.Lines[i], again.Lines[i])
				}
			}
		}
	})
}

// FuzzParseXClient: XCLIENT's attributes parse without panics into
// values that are what they claim (an unzoned, unmapped address, a port,
// a bounded session, a TTL), and written again they read back the same.
func FuzzParseXClient(f *testing.F) {
	for _, s := range []string{
		"ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=3",
		"addr=::ffff:10.0.0.1 port=1 ttl=0 CLIENT-TRANSPORT=TLS FORWARD=eA==",
		"ADDR=fe80::1%eth0", "PORT=65536", "TTL=4294967296", "DESTADDR=x", "junk =x ADDR=",
		"DESTADDR=192.0.2.9 DESTPORT=995", "destaddr=::ffff:10.0.0.1 DESTPORT=0", "DESTPORT=110",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkXClient(t, strings.Fields(line))
	})
}

func checkXClient(t *testing.T, args []string) {
	t.Helper()
	x, err := ParseXClient(args)
	if err != nil {
		if x != (XClient{}) {
			t.Fatalf("%q: error %v with %+v", args, err, x)
		}
		return
	}
	for _, ap := range []netip.AddrPort{x.Addr, x.Local} {
		if a := ap.Addr(); a.IsValid() && (a.Zone() != "" || a.Is4In6()) || !a.IsValid() && ap.Port() != 0 {
			t.Fatalf("%q: address %v", args, ap)
		}
	}
	if len(x.Session) > MaxSessionID || x.TTL < -1 {
		t.Fatalf("%q: %+v", args, x)
	}
	var again []string
	if x.Addr.Addr().IsValid() {
		again = append(again, "ADDR="+x.Addr.Addr().String())
		if x.Addr.Port() != 0 {
			again = append(again, "PORT="+strconv.Itoa(int(x.Addr.Port())))
		}
	}
	if x.Local.Addr().IsValid() {
		again = append(again, "DESTADDR="+x.Local.Addr().String())
		if x.Local.Port() != 0 {
			again = append(again, "DESTPORT="+strconv.Itoa(int(x.Local.Port())))
		}
	}
	if x.Session != "" {
		again = append(again, "SESSION="+x.Session)
	}
	if x.TTL >= 0 {
		again = append(again, "TTL="+strconv.Itoa(x.TTL))
	}
	if y, err := ParseXClient(again); err != nil || y != x {
		t.Fatalf("%q parsed as %+v, written as %q read back as %+v, %v", args, x, again, y, err)
	}
}

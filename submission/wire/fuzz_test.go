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
// are *Error with a valid reply, or I/O errors; the reader waits for more
// only while what it holds of the last line can still become a command
// within its limit.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nSTARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
		"ehlo x\nQUIT\n",
		"\r\n\x00\r\n1X\r\n",
		"AUTH " + strings.Repeat("A", 600),
		"EHLO " + strings.Repeat("x", 505) + "\r",
		"XCLIENT ADDR=IPV6:2001:db8::1 PORT=5555 HELO=a+2Bb PROTO=ESMTP SESSION=abc TTL=3\r\nxclient name=[TEMPUNAVAIL]\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, authLong, bareLF bool) {
		for _, stall := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(in)
			if stall {
				src = io.MultiReader(src, stalled{})
			}
			r := NewReader(bufio.NewReaderSize(src, 16))
			r.AllowBareLF = bareLF
			if authLong {
				r.MaxAuthCommand = 800
			}
			for range len(in) + 2 {
				cmd, err := r.ReadCommand()
				if err == nil {
					if !validVerb([]byte(cmd.Verb)) || len(cmd.Params) > r.maxAuthCommand() {
						t.Fatalf("bad command %+v", cmd)
					}
					if strings.ContainsAny(cmd.Params, "\r\n\x00") {
						t.Fatalf("control bytes in %q", cmd.Params)
					}
					if cmd.Verb == "XCLIENT" {
						checkXClient(t, cmd.Params)
					}
					continue
				}
				var we *Error
				if errors.As(err, &we) {
					if rep, err := ReadReply(bufio.NewReader(bytes.NewReader(we.Reply())), 0, 1); err != nil || rep.Code != we.Code {
						t.Fatalf("reply %q does not read back: %v", we.Reply(), err)
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

// FuzzReadAuthLine: a line comes back whole and within the limit, an
// over-long one is refused as soon as the limit is passed, nothing past
// the line is consumed, and decoding never panics.
func FuzzReadAuthLine(f *testing.F) {
	for _, s := range []string{"AGFsaWNlAHNlY3JldA==\r\n", "*\r\n", strings.Repeat("x", 18) + "\r\n", strings.Repeat("x", 19) + "\n", "a\x00\r\n", "=\r\n"} {
		f.Add([]byte(s))
	}
	const limit = 20 // CRLF included
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(in), stalled{}), 16)
		r := NewReader(br)
		r.MaxAuthLine, r.AllowBareLF = limit, true
		line, err := r.ReadAuthLine()
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
			if !we.Fatal || !tooLong || we.Enhanced != "5.5.6" {
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

// FuzzReadReply: no panics, bounded results, one code per reply, and a
// reply written by Append reads back the same.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250-mx\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n",
		"535 5.7.8 no\r\n",
		"334 \r\n",
		"451-4.3.0 a\r\n451 b\r\n",
		"250-a\r\n251 b\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		for range len(in) + 1 {
			r, err := ReadReply(br, 100, 10)
			if err != nil {
				break
			}
			if len(r.Lines) == 0 || len(r.Lines) > 10 || r.Code < 200 || r.Code > 559 {
				t.Fatalf("bad reply %+v", r)
			}
			_ = r.Extensions()
			b, err := r.Append(nil)
			if err != nil {
				t.Fatalf("%+v: %v", r, err)
			}
			again, err := ReadReply(bufio.NewReader(bytes.NewReader(b)), 1000, 10)
			if err != nil {
				t.Fatalf("%+v written as %q: %v", r, b, err)
			}
			// Writing cleans text (a NUL may become the space after an
			// enhanced code), so what is written reads back to itself.
			b2, err := again.Append(nil)
			if err != nil || string(b2) != string(b) || again.Code != r.Code || len(again.Lines) != len(r.Lines) {
				t.Fatalf("%q read back as %+v, written as %q (%v)", b, again, b2, err)
			}
		}
	})
}

// FuzzParseXClient: XCLIENT's parameters parse without panics into
// values that are what they claim (an unzoned, unmapped address, a port,
// a bounded session, a TTL), errors are 501 replies, and written again
// (in xtext) they read back the same; xtext decodes what XText encodes.
func FuzzParseXClient(f *testing.F) {
	for _, s := range []string{
		"ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=3",
		"addr=IPV6:::ffff:10.0.0.1 port=1 ttl=0 HELO=a+20b PROTO=esmtp NAME=[TEMPUNAVAIL]",
		"ADDR=2001:db8::1", "ADDR=[UNAVAILABLE] PORT=[unavailable]", "PORT=65536", "TTL=4294967296",
		"FOO=x", "ADDR", "HELO=+2b", "SESSION=a+3Db",
		"DESTADDR=192.0.2.9 DESTPORT=587", "DESTADDR=IPV6:2001:db8::25 DESTPORT=[UNAVAILABLE]", "DESTADDR=[UNAVAILABLE] DESTPORT=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, params string) {
		checkXClient(t, params)
		if dec, err := DecodeXText(XText(params)); err != nil || dec != params {
			t.Fatalf("xtext of %q decodes to %q, %v", params, dec, err)
		}
		if dec, err := DecodeXText(params); err == nil {
			if again, err := DecodeXText(XText(dec)); err != nil || again != dec {
				t.Fatalf("xtext %q decodes to %q, which encodes to %q, decoded %q", params, dec, XText(dec), again)
			}
		}
	})
}

func checkXClient(t *testing.T, params string) {
	t.Helper()
	x, err := ParseXClient(params)
	if err != nil {
		var we *Error
		if !errors.As(err, &we) || we.Code != 501 || we.Fatal || x != (XClient{}) {
			t.Fatalf("%q: error %v with %+v", params, err, x)
		}
		if _, err := (&Reply{Code: we.Code, Enhanced: we.Enhanced, Lines: []string{we.Text}}).Append(nil); err != nil {
			t.Fatalf("%q: reply %v", params, err)
		}
		return
	}
	for _, ap := range []netip.AddrPort{x.Addr, x.Local} {
		if a := ap.Addr(); a.IsValid() && (a.Zone() != "" || a.Is4In6()) || !a.IsValid() && ap.Port() != 0 {
			t.Fatalf("%q: address %v", params, ap)
		}
	}
	if len(x.Session) > MaxSessionID || x.TTL < -1 {
		t.Fatalf("%q: %+v", params, x)
	}
	again := []string{"PROTO=ESMTP"}
	for _, at := range []struct {
		ap         netip.AddrPort
		addr, port string
	}{{x.Addr, "ADDR", "PORT"}, {x.Local, "DESTADDR", "DESTPORT"}} {
		if a := at.ap.Addr(); a.IsValid() {
			v := a.String()
			if a.Is6() {
				v = "IPV6:" + v
			}
			again = append(again, at.addr+"="+v)
			if at.ap.Port() != 0 {
				again = append(again, at.port+"="+strconv.Itoa(int(at.ap.Port())))
			}
		}
	}
	if x.Session != "" {
		again = append(again, "SESSION="+XText(x.Session))
	}
	if x.TTL >= 0 {
		again = append(again, "TTL="+strconv.Itoa(x.TTL))
	}
	if y, err := ParseXClient(strings.Join(again, " ")); err != nil || y != x {
		t.Fatalf("%q parsed as %+v, written as %q read back as %+v, %v", params, x, again, y, err)
	}
}

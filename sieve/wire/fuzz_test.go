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

// FuzzReadCommand: no panics, bounded reads, errors are *Error with a
// response that reads back, or I/O errors; a non-fatal *Error leaves the
// reader where the next command can be read; the reader waits for more
// only while what it holds of the last line can still end in time.
func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHNlY3JldA==\"\r\n",
		"AUTHENTICATE \"PLAIN\" {20+}\r\nAGFsaWNlAHNlY3JldA==\r\nLOGOUT\r\n",
		"NOOP \"a\\\"b\" {0}\r\n\r\n",
		"NOOP \"x {3+}\r\nabc\r\nNOOP\r\n",
		"STARTTLS\nCAPABILITY\n",
		"\r\n\x00\r\n\"\xff\"\r\n",
		"NOOP " + strings.Repeat("x", 300),
		"NOOP {3+}\r\nabc " + strings.Repeat("x", 200) + "\r",
		"NOOP {99999+}\r\n",
		"XCLIENT ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=3\r\nXCLIENT \"ADDR=::1\" TTL=x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, stall := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(in)
			if stall {
				src = io.MultiReader(src, stalled{})
			}
			r := NewReader(bufio.NewReaderSize(src, 16))
			r.MaxLine, r.MaxLiteral, r.MaxLiterals = 200, 100, 4
			for range len(in) + 2 {
				cmd, err := r.ReadCommand()
				if err == nil {
					if cmd.Name == "" || len(cmd.Args) > maxValues {
						t.Fatalf("bad command %+v", cmd)
					}
					for _, a := range cmd.Args {
						if a.Kind == KindLiteral && len(a.Str) > 100 || a.Kind == KindQuoted && len(a.Str) > MaxQuoted || a.Kind == KindList {
							t.Fatalf("bad argument %+v", a)
						}
					}
					if cmd.Name == "XCLIENT" {
						checkXClient(t, cmd.Args)
					}
					continue
				}
				var we *Error
				if errors.As(err, &we) {
					resp, rerr := ReadResponse(bufio.NewReader(bytes.NewReader(we.Reply())), 0)
					if rerr != nil || resp.Text != we.Text || (resp.Type == "BYE") != we.Fatal {
						t.Fatalf("reply %q reads back as %+v %v", we.Reply(), resp, rerr)
					}
					if we.Fatal {
						break
					}
					continue
				}
				if stall && errors.Is(err, errStalled) {
					tail := in[bytes.LastIndexByte(in, '\n')+1:]
					if n := len(bytes.TrimSuffix(tail, []byte("\r"))); n > 200+100 {
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

// FuzzReadResponse: no panics, and a response read is written by Append
// in a form that reads back to the same.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		dovecotGreeting,
		"NO (TRYLATER) \"x\"\r\n",
		"OK (SASL {3}\r\nabc) \"y\"\r\n",
		"BYE (X (a (b \"c\"))) \"z\"\r\n",
		"{2}\r\nab\r\n",
		"OK (\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		for range len(in) + 1 {
			r, err := ReadResponse(br, 300)
			if err != nil {
				break
			}
			b := r.Append(nil)
			again, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)), 1<<20)
			if err != nil {
				t.Fatalf("%+v written as %q: %v", r, b, err)
			}
			if b2 := again.Append(nil); !bytes.Equal(b, b2) || again.Type != r.Type || again.Code != r.Code || again.Text != r.Text {
				t.Fatalf("%q read back as %+v, written as %q", b, again, b2)
			}
		}
	})
}

// FuzzStringRoundTrip: any string written by AppendClientString reads
// back the same through ReadString, and AppendString's through
// ReadResponse.
func FuzzStringRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", "\"\\", "\r\n", "\x00", "\xff{3}", strings.Repeat("q", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := NewReader(bufio.NewReader(bytes.NewReader(append(AppendClientString(nil, s), "\r\n"...))))
		r.MaxLiteral = int64(len(s)) + 1
		v, err := r.ReadString()
		if err != nil || v.Str != s {
			t.Fatalf("%q: got %+v %v", s, v, err)
		}
		resp, err := ReadResponse(bufio.NewReader(bytes.NewReader((&Response{Type: "NO", Text: s}).Append(nil))), len(s)+100)
		if err != nil || resp.Text != s {
			t.Fatalf("%q: response text %+v %v", s, resp, err)
		}
	})
}

// FuzzParseXClient: XCLIENT's arguments parse without panics into
// values that are what they claim (an unzoned, unmapped address, a port,
// a bounded session, a TTL), and written again they read back the same.
func FuzzParseXClient(f *testing.F) {
	for _, s := range []string{
		"ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=3",
		"addr=::ffff:10.0.0.1 port=1 ttl=0 CLIENT-TRANSPORT=TLS FORWARD=eA==",
		"ADDR=fe80::1%eth0", "PORT=65536", "TTL=4294967296", "DESTADDR=x", "junk =x ADDR=",
		"DESTADDR=192.0.2.9 DESTPORT=4190", "destaddr=::ffff:10.0.0.1 DESTPORT=0", "DESTPORT=4190",
	} {
		f.Add(s, false)
	}
	f.Add("ADDR=10.0.0.1", true)
	f.Fuzz(func(t *testing.T, line string, quoted bool) {
		var args []Value
		for _, w := range strings.Fields(line) {
			kind := KindAtom
			if quoted {
				kind = KindQuoted
			}
			args = append(args, Value{Kind: kind, Str: w})
		}
		checkXClient(t, args)
	})
}

func checkXClient(t *testing.T, args []Value) {
	t.Helper()
	x, err := ParseXClient(args)
	if err != nil {
		var we *Error
		if !errors.As(err, &we) || we.Fatal || x != (XClient{}) {
			t.Fatalf("%+v: error %v with %+v", args, err, x)
		}
		return
	}
	for _, ap := range []netip.AddrPort{x.Addr, x.Local} {
		if a := ap.Addr(); a.IsValid() && (a.Zone() != "" || a.Is4In6()) || !a.IsValid() && ap.Port() != 0 {
			t.Fatalf("%+v: address %v", args, ap)
		}
	}
	if len(x.Session) > MaxSessionID || x.TTL < -1 {
		t.Fatalf("%+v: %+v", args, x)
	}
	var again []Value
	add := func(s string) { again = append(again, Value{Kind: KindAtom, Str: s}) }
	if x.Addr.Addr().IsValid() {
		add("ADDR=" + x.Addr.Addr().String())
		if x.Addr.Port() != 0 {
			add("PORT=" + strconv.Itoa(int(x.Addr.Port())))
		}
	}
	if x.Local.Addr().IsValid() {
		add("DESTADDR=" + x.Local.Addr().String())
		if x.Local.Port() != 0 {
			add("DESTPORT=" + strconv.Itoa(int(x.Local.Port())))
		}
	}
	if x.Session != "" {
		add("SESSION=" + x.Session)
	}
	if x.TTL >= 0 {
		add("TTL=" + strconv.Itoa(x.TTL))
	}
	if y, err := ParseXClient(again); err != nil || y != x {
		t.Fatalf("%+v parsed as %+v, written as %+v read back as %+v, %v", args, x, again, y, err)
	}
}

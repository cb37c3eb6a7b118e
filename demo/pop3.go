package demo

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// pop3Backend is a small POP3 server (RFC 1939, CAPA of RFC 2449, AUTH
// PLAIN of RFC 5034) over a host's maildrops: enough for the proxy and
// clients such as curl, not a full server. Maildrops are read-only (DELE
// is refused), and nothing but PLAIN is offered.
type pop3Backend struct {
	*tcpServer
	host *host
}

func startPOP3Backend(h *host) (*pop3Backend, error) {
	b := &pop3Backend{host: h}
	srv, err := startTCPServer(h.name+" POP3", b.serve)
	if err != nil {
		return nil, err
	}
	b.tcpServer = srv
	return b, nil
}

// pop3Session is one POP3 connection.
type pop3Session struct {
	b    *pop3Backend
	r    *bufio.Reader
	w    *bufio.Writer
	user string   // after USER
	box  *mailbox // after login
	msgs [][]byte // the maildrop as it was at login
}

func (b *pop3Backend) serve(c net.Conn) {
	s := &pop3Session{b: b, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	s.ok("pipegate demo POP3 (%s) ready.", b.host.name)
	for s.w.Flush() == nil {
		line, err := readLine(s.r)
		if err != nil {
			if err == errLineTooLong {
				s.err("line too long")
				s.w.Flush()
			}
			return
		}
		cmd, arg, _ := strings.Cut(line, " ")
		if !s.command(strings.ToUpper(cmd), arg) {
			s.w.Flush()
			return
		}
	}
}

func (s *pop3Session) ok(format string, args ...any) {
	fmt.Fprintf(s.w, "+OK "+format+"\r\n", args...)
}

func (s *pop3Session) err(format string, args ...any) {
	fmt.Fprintf(s.w, "-ERR "+format+"\r\n", args...)
}

// command runs one command; false ends the session.
func (s *pop3Session) command(cmd, arg string) bool {
	switch cmd {
	case "QUIT":
		s.ok("pipegate demo POP3 says goodbye.")
		return false
	case "CAPA":
		s.ok("Capability list follows")
		for _, c := range []string{"USER", "SASL PLAIN", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION pipegate-demo"} {
			s.w.WriteString(c + "\r\n")
		}
		s.w.WriteString(".\r\n")
		return true
	case "NOOP":
		if s.box == nil {
			s.err("log in first")
		} else {
			s.ok("")
		}
		return true
	}
	if s.box == nil {
		s.authorization(cmd, arg)
	} else {
		s.transaction(cmd, arg)
	}
	return true
}

// authorization is the state before login: USER and PASS, AUTH PLAIN.
func (s *pop3Session) authorization(cmd, arg string) {
	switch cmd {
	case "USER":
		s.user = arg
		s.ok("send PASS")
	case "PASS":
		if s.user == "" {
			s.err("USER first")
			return
		}
		s.login(s.user, arg)
	case "AUTH":
		mech, ir, hasIR := strings.Cut(arg, " ")
		if !strings.EqualFold(mech, "PLAIN") {
			s.err("only AUTH PLAIN here")
			return
		}
		if !hasIR {
			s.w.WriteString("+ \r\n")
			if s.w.Flush() != nil {
				return
			}
			line, err := readLine(s.r)
			if err != nil {
				return
			}
			ir = line
		}
		if ir == "*" {
			s.err("AUTH cancelled")
			return
		}
		authz, user, pass, ok := decodePlain(ir)
		if !ok || authz != "" && !strings.EqualFold(authz, user) {
			s.err("[AUTH] malformed AUTH PLAIN")
			return
		}
		s.login(user, pass)
	default:
		s.err("log in first (USER and PASS, or AUTH PLAIN)")
	}
}

func (s *pop3Session) login(user, pass string) {
	s.user = ""
	box, ok := s.b.host.login(user, pass)
	if !ok {
		s.err("[AUTH] Authentication failed.")
		return
	}
	s.box, s.msgs = box, box.maildrop()
	s.ok("Logged in at %s: %d messages.", s.b.host.name, len(s.msgs))
}

// transaction is the state after login, over the maildrop as it was then.
func (s *pop3Session) transaction(cmd, arg string) {
	switch cmd {
	case "STAT":
		s.ok("%d %d", len(s.msgs), s.size())
	case "LIST", "UIDL":
		if arg != "" {
			n, ok := s.number(arg)
			if ok {
				s.ok("%d %s", n, s.listValue(cmd, n))
			}
			return
		}
		s.ok("%d messages", len(s.msgs))
		for n := 1; n <= len(s.msgs); n++ {
			fmt.Fprintf(s.w, "%d %s\r\n", n, s.listValue(cmd, n))
		}
		s.w.WriteString(".\r\n")
	case "RETR":
		n, ok := s.number(arg)
		if !ok {
			return
		}
		msg := s.msgs[n-1]
		s.ok("%d octets", len(msg))
		writeDotStuffed(s.w, msg)
	case "RSET":
		s.ok("")
	case "DELE":
		s.err("the demo's maildrops are read-only")
	default:
		s.err("unknown command")
	}
}

func (s *pop3Session) size() int {
	n := 0
	for _, m := range s.msgs {
		n += len(m)
	}
	return n
}

func (s *pop3Session) listValue(cmd string, n int) string {
	if cmd == "UIDL" {
		return fmt.Sprintf("demo-%d", n)
	}
	return strconv.Itoa(len(s.msgs[n-1]))
}

// number parses a message number and answers -ERR when there is no such
// message.
func (s *pop3Session) number(arg string) (int, bool) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(s.msgs) {
		s.err("no such message")
		return 0, false
	}
	return n, true
}

// writeDotStuffed writes msg as a multi-line response body (RFC 1939
// section 3): lines starting with "." get another, and ".\r\n" ends it.
func writeDotStuffed(w *bufio.Writer, msg []byte) {
	for len(msg) > 0 {
		line, rest, found := bytes.Cut(msg, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if bytes.HasPrefix(line, []byte(".")) {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
		if !found {
			break
		}
		msg = rest
	}
	w.WriteString(".\r\n")
}

// decodePlain decodes a SASL PLAIN message in base64 (RFC 4616).
func decodePlain(b64 string) (authz, user, pass string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", "", false
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

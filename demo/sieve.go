package demo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds of the ManageSieve backend's commands.
const (
	maxSieveArgs    = 8
	maxSieveLiteral = 256 << 10 // a script
)

// sieveBackend is a small ManageSieve server (RFC 5804) keeping each
// account's scripts in memory: the capability greeting, AUTHENTICATE
// PLAIN, CAPABILITY, HAVESPACE, PUTSCRIPT, CHECKSCRIPT, LISTSCRIPTS,
// SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, NOOP and LOGOUT.
// Scripts are stored as given, not compiled, and never run: it is the
// proxy's peer, not a mail filter.
type sieveBackend struct {
	*tcpServer
	host *host
}

func startSieveBackend(h *host) (*sieveBackend, error) {
	b := &sieveBackend{host: h}
	srv, err := startTCPServer(h.name+" ManageSieve", b.serve)
	if err != nil {
		return nil, err
	}
	b.tcpServer = srv
	return b, nil
}

// sieveSession is one ManageSieve connection.
type sieveSession struct {
	b   *sieveBackend
	r   *bufio.Reader
	w   *bufio.Writer
	box *mailbox // after AUTHENTICATE
}

func (b *sieveBackend) serve(c net.Conn) {
	s := &sieveSession{b: b, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	s.capabilities()
	s.respond("OK", "", "pipegate demo ManageSieve ("+b.host.name+") ready")
	for s.w.Flush() == nil {
		args, err := readSieveCommand(s.r)
		var perr sieveSyntaxError
		switch {
		case errors.As(err, &perr):
			s.respond("NO", "", perr.Error())
			continue
		case err != nil:
			if errors.Is(err, errLineTooLong) {
				s.respond("BYE", "", "line too long")
				s.w.Flush()
			}
			return
		case len(args) == 0:
			s.respond("NO", "", "empty command")
			continue
		}
		if !s.command(strings.ToUpper(args[0]), args[1:]) {
			s.w.Flush()
			return
		}
	}
}

func (s *sieveSession) capabilities() {
	for _, c := range [][2]string{
		{"IMPLEMENTATION", "pipegate demo ManageSieve"},
		{"SASL", "PLAIN"},
		{"SIEVE", "fileinto reject envelope vacation"},
		{"VERSION", "1.0"},
	} {
		fmt.Fprintf(s.w, "%s %s\r\n", quoteSieve(c[0]), quoteSieve(c[1]))
	}
}

// respond writes a status response: OK, NO or BYE, an optional code and
// a text.
func (s *sieveSession) respond(typ, code, text string) {
	s.w.WriteString(typ)
	if code != "" {
		s.w.WriteString(" (" + code + ")")
	}
	s.w.WriteString(" " + quoteSieve(text) + "\r\n")
}

// command runs one command; false ends the session.
func (s *sieveSession) command(cmd string, args []string) bool {
	switch cmd {
	case "LOGOUT":
		s.respond("OK", "", "Logout completed")
		return false
	case "CAPABILITY":
		s.capabilities()
		s.respond("OK", "", "Capability completed")
		return true
	case "NOOP":
		s.respond("OK", "", "NOOP completed")
		return true
	case "AUTHENTICATE":
		s.authenticate(args)
		return true
	case "STARTTLS":
		s.respond("NO", "", "no TLS on this in-memory backend")
		return true
	}
	if s.box == nil {
		s.respond("NO", "", "authenticate first")
		return true
	}
	s.scriptCommand(cmd, args)
	return true
}

// authenticate is AUTHENTICATE "PLAIN" with or without an initial
// response.
func (s *sieveSession) authenticate(args []string) {
	switch {
	case s.box != nil:
		s.respond("NO", "", "already authenticated")
		return
	case len(args) < 1 || !strings.EqualFold(args[0], "PLAIN"):
		s.respond("NO", "", "only PLAIN here")
		return
	}
	var ir string
	if len(args) > 1 {
		ir = args[1]
	} else {
		s.w.WriteString("\"\"\r\n") // the empty challenge
		if s.w.Flush() != nil {
			return
		}
		answer, err := readSieveCommand(s.r)
		if err != nil || len(answer) != 1 {
			s.respond("NO", "", "bad SASL answer")
			return
		}
		ir = answer[0]
	}
	if ir == "*" {
		s.respond("NO", "", "authentication cancelled")
		return
	}
	authz, user, pass, ok := decodePlain(ir)
	if !ok || authz != "" && !strings.EqualFold(authz, user) {
		s.respond("NO", "", "malformed PLAIN message")
		return
	}
	box, ok := s.b.host.login(user, pass)
	if !ok {
		s.respond("NO", "", "Authentication failed.")
		return
	}
	s.box = box
	s.respond("OK", "", "Logged in at "+s.b.host.name)
}

// scriptCommand runs a command on the account's scripts.
func (s *sieveSession) scriptCommand(cmd string, args []string) {
	want := map[string]int{"LISTSCRIPTS": 0, "PUTSCRIPT": 2, "CHECKSCRIPT": 1, "GETSCRIPT": 1,
		"SETACTIVE": 1, "DELETESCRIPT": 1, "RENAMESCRIPT": 2, "HAVESPACE": 2}
	n, known := want[cmd]
	switch {
	case !known:
		s.respond("NO", "", "unknown command")
		return
	case len(args) != n:
		s.respond("NO", "", fmt.Sprintf("%s takes %d arguments", cmd, n))
		return
	}
	mb := s.box
	mb.mu.Lock()
	defer mb.mu.Unlock()
	switch cmd {
	case "LISTSCRIPTS":
		names := make([]string, 0, len(mb.scripts))
		for name := range mb.scripts {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			s.w.WriteString(quoteSieve(name))
			if name == mb.active {
				s.w.WriteString(" ACTIVE")
			}
			s.w.WriteString("\r\n")
		}
		s.respond("OK", "", "Listscripts completed")
	case "HAVESPACE":
		if size, err := strconv.Atoi(args[1]); err != nil || size > maxSieveLiteral {
			s.respond("NO", "QUOTA/MAXSIZE", "script too large")
			return
		}
		s.respond("OK", "", "Putscript would succeed")
	case "CHECKSCRIPT":
		s.checked(args[0], "Script is stored as is (this demo backend does not compile Sieve)")
	case "PUTSCRIPT":
		if !validScriptName(args[0]) {
			s.respond("NO", "", "bad script name")
			return
		}
		if s.checked(args[1], "") {
			mb.scripts[args[0]] = args[1]
		}
	case "GETSCRIPT":
		script, ok := mb.scripts[args[0]]
		if !ok {
			s.respond("NO", "NONEXISTENT", "no such script")
			return
		}
		fmt.Fprintf(s.w, "{%d}\r\n%s\r\n", len(script), script)
		s.respond("OK", "", "Getscript completed")
	case "SETACTIVE":
		if _, ok := mb.scripts[args[0]]; !ok && args[0] != "" {
			s.respond("NO", "NONEXISTENT", "no such script")
			return
		}
		mb.active = args[0]
		s.respond("OK", "", "Setactive completed")
	case "DELETESCRIPT":
		if _, ok := mb.scripts[args[0]]; !ok {
			s.respond("NO", "NONEXISTENT", "no such script")
		} else if args[0] == mb.active {
			s.respond("NO", "ACTIVE", "script is active")
		} else {
			delete(mb.scripts, args[0])
			s.respond("OK", "", "Deletescript completed")
		}
	case "RENAMESCRIPT":
		script, ok := mb.scripts[args[0]]
		switch {
		case !ok:
			s.respond("NO", "NONEXISTENT", "no such script")
		case !validScriptName(args[1]):
			s.respond("NO", "", "bad script name")
		case mb.scripts[args[1]] != "":
			s.respond("NO", "ALREADYEXISTS", "a script has that name")
		default:
			delete(mb.scripts, args[0])
			mb.scripts[args[1]] = script
			if mb.active == args[0] {
				mb.active = args[1]
			}
			s.respond("OK", "", "Renamescript completed")
		}
	}
}

// checked answers whether script may be stored: valid UTF-8 is all this
// backend asks. okText "" leaves the OK to say "Putscript completed".
func (s *sieveSession) checked(script, okText string) bool {
	if !utf8.ValidString(script) {
		s.respond("NO", "", "script is not UTF-8")
		return false
	}
	if okText == "" {
		okText = "Putscript completed"
	}
	s.respond("OK", "", okText)
	return true
}

func validScriptName(name string) bool {
	return name != "" && len(name) <= 128 && utf8.ValidString(name) && !strings.ContainsAny(name, "\x00\r\n/")
}

// sieveSyntaxError is a command the backend cannot parse; the session
// goes on after it.
type sieveSyntaxError string

func (e sieveSyntaxError) Error() string { return string(e) }

// readSieveCommand reads one command line: atoms, quoted strings and
// literals ({n+} and {n}, both taken without a continuation, RFC 5804
// section 4), and returns its words with strings decoded.
func readSieveCommand(r *bufio.Reader) ([]string, error) {
	var args []string
	var syntax sieveSyntaxError
lines:
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		for line != "" {
			if len(args) == maxSieveArgs {
				return nil, sieveSyntaxError("too many arguments")
			}
			line = strings.TrimLeft(line, " ")
			switch {
			case line == "":
			case line[0] == '"':
				s, rest, ok := unquoteSieve(line)
				if !ok {
					syntax = "bad quoted string"
					line = ""
					continue
				}
				args, line = append(args, s), rest
			case line[0] == '{' && strings.HasSuffix(line, "}"):
				n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(line[1:], "}"), "+"))
				if err != nil || n < 0 || n > maxSieveLiteral {
					return nil, sieveSyntaxError("bad literal size")
				}
				buf := make([]byte, n)
				if _, err := io.ReadFull(r, buf); err != nil {
					return nil, err
				}
				args, line = append(args, string(buf)), ""
				continue lines // the command goes on after the literal's octets
			default:
				word, rest, _ := strings.Cut(line, " ")
				args, line = append(args, word), rest
			}
		}
		if syntax != "" {
			return nil, syntax
		}
		return args, nil
	}
}

// unquoteSieve decodes the quoted string at the start of s and returns
// the rest of s.
func unquoteSieve(s string) (str, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			i++
			if i == len(s) || s[i] != '"' && s[i] != '\\' {
				return "", "", false
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// quoteSieve encodes s as a quoted string, or a literal when it holds a
// line break.
func quoteSieve(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Sprintf("{%d}\r\n%s", len(s), s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

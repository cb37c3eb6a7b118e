// Package wire is the pre-login ManageSieve codec of pipegate's sieve
// proxy (RFC 5804). It reads client commands (atoms, quoted strings,
// literals) and AUTHENTICATE responses under size limits, writes
// responses (OK, NO, BYE with response codes and strings, capability
// lines, SASL challenges), and reads a backend's responses: the
// capability list up to its OK, statuses with codes, and challenges. It
// does no I/O policy: callers decide what to answer and when to give up.
//
// Reading a client command:
//
//	r := wire.NewReader(br) // br is a *bufio.Reader on the client conn
//	cmd, err := r.ReadCommand()
//	var we *wire.Error
//	if errors.As(err, &we) {
//		conn.Write(we.Reply()) // NO "..." or, when we.Fatal, BYE "..." and close
//	}
//	if cmd.Name == "AUTHENTICATE" {
//		args, err := cmd.Strings(1, 2) // mechanism [initial response]
//		conn.Write(wire.AppendString(nil, challenge)) // a challenge is a string on its own line
//		resp, err := r.ReadString() // the client's answer, "*" to cancel
//	}
//
// Writing responses:
//
//	b := wire.Capabilities{{Name: "IMPLEMENTATION", Value: "pipegate"}, {Name: "SASL", Value: "PLAIN"}, {Name: "STARTTLS"}}.Append(nil)
//	b = (&wire.Response{Type: "OK", Text: "ready"}).Append(b)
//	b = (&wire.Response{Type: "NO", Code: "TRYLATER", Text: "Backend unavailable"}).Append(b)
//
// Reading a backend's greeting:
//
//	caps, resp, err := wire.ReadCapabilities(br, 0, 0)
//	if resp.Type == "OK" && caps.Has("STARTTLS") { ... }
//
// RFC 5804 section 4 gives the grammar: client literals are "{n+}"
// (literal-c2s) and server literals "{n}" (literal-s2c); no continuation
// request exists, so the bytes of a literal always follow its line. The
// Reader takes "{n}" from clients too, as Dovecot does, and reads it the
// same way. Quoted strings hold at most 1024 octets of UTF-8 without CR,
// LF or NUL (SASL data as many as a line: clients send OAuth tokens in
// quoted strings, and Dovecot takes them); only \" and \\ are escapes.
// RFC 5804 sets no line or literal limit: the Reader's defaults (8192
// octets of command text, 12288 octets per literal, RFC 4954's figure for
// SASL data) are fields.
package wire

// Package wire is the pre-login IMAP codec of pipegate's IMAP proxy: it
// reads client commands (atoms, quoted strings, literals of both kinds,
// parenthesized lists) under size limits, reads server responses (tagged,
// untagged and continuation lines, response codes), and writes strings the
// way a backend can take them. It does no I/O policy: callers decide what to
// answer and when to give up.
//
// Reading a client command:
//
//	r := wire.NewReader(br)       // br is a *bufio.Reader on the client conn
//	r.MaxLine, r.MaxLiteral = 8192, 64<<10
//	r.Continue = func(n int64) error { _, err := io.WriteString(conn, "+ OK\r\n"); return err }
//	cmd, err := r.ReadCommand()
//	var we *wire.Error
//	if errors.As(err, &we) {
//		// the client's mistake: answer "<we.Tag> BAD [<we.Code>] <we.Text>",
//		// then BYE and close if we.Fatal, else read the next command
//	}
//	args, err := cmd.AStrings(2) // LOGIN user password
//
// Reading a server response:
//
//	resp, err := wire.ReadResponse(br, 64<<10)
//	if resp.Tag == "a1" && resp.Type == "OK" { caps := resp.Caps() ... }
//
// Writing a command to a server:
//
//	w := &wire.Writer{W: bw, LiteralPlus: true}
//	w.Atom("a1").SP().Atom("LOGIN").SP().String(user).SP().String(pass).CRLF()
//	err := w.Flush()
//
// Only the parts of RFC 9051 (IMAP4rev2), RFC 3501 and RFC 7888 (LITERAL+,
// LITERAL-) that occur before login are covered; after login the proxy
// never parses again.
package wire

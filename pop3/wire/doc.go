// Package wire is the pre-login POP3 codec of pipegate's POP3 proxy
// (RFC 1939, RFC 2449 CAPA and response codes, RFC 2595 STLS, RFC 5034
// SASL). It reads client commands and SASL responses under size limits,
// writes server responses (+OK, -ERR with response codes, multi-line
// responses with dot-stuffing, "+ " continuations), and reads a backend's
// responses, CAPA included. It does no I/O policy: callers decide what to
// answer and when to give up.
//
// Reading a client command:
//
//	r := wire.NewReader(br) // br is a *bufio.Reader on the client conn
//	cmd, err := r.ReadCommand()
//	var we *wire.Error
//	if errors.As(err, &we) {
//		conn.Write(we.Reply()) // "-ERR ..."; then close if we.Fatal
//	}
//	switch cmd.Name {
//	case "USER": // cmd.Args[0]
//	case "PASS": // cmd.Rest: a password may hold spaces
//	case "AUTH": // cmd.Args: mechanism [initial-response]
//		line, err := r.ReadSASLResponse() // after writing "+ <challenge>"
//		data, cancel, err := wire.DecodeResponse(line)
//	}
//
// Writing responses:
//
//	conn.Write((&wire.Response{Status: wire.StatusErr, Code: wire.CodeSysTemp, Text: "Try later"}).Append(nil))
//	conn.Write((&wire.Response{Status: wire.StatusOK, Text: "Capability list follows", Lines: caps.Lines()}).Append(nil))
//
// Reading a backend's CAPA:
//
//	resp, err := wire.ReadMultiLine(br, 0, 0)
//	caps := wire.ParseCapa(resp.Lines)
//	if caps.Has("STLS") { ... }
//
// Limits follow the RFCs: a command line is at most 255 octets with its
// CRLF (RFC 2449 section 4), which also holds the AUTH command with its
// initial response (RFC 5034 section 4: a client whose initial response
// would not fit sends it after the first "+ " instead); a SASL response
// line has no limit in RFC 5034 beyond what the mechanisms need, so it
// takes RFC 4954's figure of 12288 octets; a response's first line is at
// most 512 octets (RFC 2449 section 4). Each is a Reader field.
package wire

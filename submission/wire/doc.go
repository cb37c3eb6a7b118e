// Package wire is the pre-login SMTP codec of pipegate's submission proxy
// (RFC 5321, RFC 6409 submission, RFC 4954 AUTH, RFC 3207 STARTTLS,
// RFC 2920 pipelining, RFC 2034/3463 enhanced status codes). It reads
// client commands and AUTH exchange lines under size limits, writes
// replies (multi-line, with enhanced status codes), and reads a backend's
// replies, EHLO keywords included. It does no I/O policy: callers decide
// what to answer and when to give up.
//
// Reading a client command:
//
//	r := wire.NewReader(br) // br is a *bufio.Reader on the client conn
//	cmd, err := r.ReadCommand()
//	var we *wire.Error
//	if errors.As(err, &we) {
//		conn.Write(we.Reply()) // "500 5.5.2 ..."; then close if we.Fatal
//	}
//	switch cmd.Verb {
//	case "EHLO": // cmd.Params is the domain
//	case "STARTTLS": // r.Buffered() > 0: pipelined bytes to discard (RFC 3207 section 4.2)
//	case "AUTH":
//		line, err := r.ReadAuthLine() // after writing "334 <challenge>"
//		data, cancel, err := wire.DecodeResponse(line)
//	}
//
// Writing a reply:
//
//	b, err := (&wire.Reply{Code: 535, Enhanced: "5.7.8", Lines: []string{"Authentication credentials invalid"}}).Append(nil)
//
// Reading a backend's EHLO reply:
//
//	rep, err := wire.ReadReply(br, 0, 0)
//	exts := rep.Extensions()
//	if exts.Has("STARTTLS") { ... }
//
// Limits follow the RFCs: a command line is at most 512 octets with its
// CRLF (RFC 5321 section 4.5.3.1.4), the AUTH command with its initial
// response included (RFC 4954 section 4); a line of an AUTH exchange may
// have 12288 octets (RFC 4954 section 4); a reply line 512 octets (RFC
// 5321 section 4.5.3.1.5). Each is a field. Lines end in CRLF only (RFC
// 5321 section 2.3.8) unless Reader.AllowBareLF is set.
package wire

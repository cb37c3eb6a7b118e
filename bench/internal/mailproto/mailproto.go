// Package mailproto is what the mail benchmarks (bench/mailbench,
// bench/soakload) share about the four protocols pipegate mail serves: their
// names, the listeners each benchmark gives pipegate, and where a server's
// reply ends.
//
//	for _, l := range mailproto.Listeners { ... l.Proto, l.TLS ... }
//	if mailproto.ReplyEnds(mailproto.IMAP, line, false) { /* the tagged line */ }
package mailproto

import "strings"

// The protocols, as pipegate's config names them.
const (
	IMAP       = "imap"
	POP3       = "pop3"
	Sieve      = "sieve"
	Submission = "submission"
)

// Listener is one listener of the pipegate under test.
type Listener struct {
	Proto string
	TLS   bool // implicit TLS; without it STARTTLS/STLS is offered
}

// Listeners are plain and implicit TLS for IMAP, POP3 and submission (587
// offers STARTTLS), and ManageSieve with STARTTLS.
var Listeners = []Listener{
	{IMAP, false}, {IMAP, true},
	{POP3, false}, {POP3, true},
	{Sieve, false},
	{Submission, false}, {Submission, true},
}

// ReplyEnds reports whether line ends a reply in proto: IMAP's tagged line
// (with greeting, the server's first line), POP3's status line,
// ManageSieve's OK, NO or BYE, SMTP's last line.
func ReplyEnds(proto, line string, greeting bool) bool {
	switch proto {
	case IMAP:
		return greeting || !strings.HasPrefix(line, "* ")
	case POP3:
		return true
	case Sieve:
		return strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "NO") || strings.HasPrefix(line, "BYE")
	case Submission:
		return len(line) >= 4 && line[3] == ' '
	}
	return false
}

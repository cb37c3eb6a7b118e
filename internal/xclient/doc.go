// Package xclient checks the attributes of XCLIENT, the command by which a
// trusted proxy in front tells a mail server who its client is, in the
// two forms pipegate's protocols take: Dovecot's (pop3-login's and
// Pigeonhole's managesieve-login cmd_xclient: NAME=value, values as they
// are, see ParseDovecot) and Postfix's (XCLIENT_README, which submission
// takes: values in xtext, "IPV6:" addresses, [UNAVAILABLE]; its wire
// package decodes those and sets the attributes both forms share through
// a Parser). The protocols' wire packages read the command; this package
// decides what its values say.
//
//	x, err := xclient.ParseDovecot([]string{"ADDR=192.0.2.1", "PORT=5555", "DESTADDR=198.51.100.10", "TTL=3"})
//	if err != nil {
//		return err // e.g. "XCLIENT PORT: not a port number (1 to 65535)": apply nothing
//	}
//	// The client's address (ADDR), where it connected (DESTADDR), the TTL:
//	x.Apply(session)
package xclient

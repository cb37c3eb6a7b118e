// Package tlsconf builds the TLS configurations of pipegate's daemons from
// files, and reloads them without dropping connections.
//
// Server side:
//
//	srv, err := tlsconf.LoadServer(tlsconf.ServerFiles{
//		Cert:       "/etc/pipegate/server.crt",
//		Key:        "/etc/pipegate/server.key",
//		ClientCA:   "",                          // set to require client certificates
//		TicketKeys: "/etc/pipegate/ticket.keys", // shared by all instances
//	})
//	if err != nil {
//		return err // names the file and what is wrong with it
//	}
//	ln := tls.NewListener(raw, srv.Config())
//	// on SIGHUP:
//	if err := srv.Reload(); err != nil {
//		log.Error("tls reload failed, keeping the old certificates", "err", err)
//	}
//
// # Several certificates
//
// An RSA and an ECDSA certificate can be served together, as nginx, HAProxy
// and Postfix do:
//
//	files := tlsconf.ServerFiles{Cert: "site-rsa.crt", Key: "site-rsa.key"}.
//		WithPairs(tlsconf.KeyPair{Cert: "site-ecdsa.crt", Key: "site-ecdsa.key"})
//
// Each client gets the first certificate it supports, in the order ECDSA,
// Ed25519, RSA whatever the order given (signing with RSA-2048 costs
// milliseconds per handshake in Go, with ECDSA P-256 tens of microseconds),
// among those valid for the name it sent, or any if none is. Reload re-reads
// them all, or keeps them all on error. Server.Served describes them for
// the logs.
//
// Client side (towards an upstream or a backend):
//
//	cfg, err := tlsconf.LoadClient(tlsconf.ClientFiles{CA: "/etc/pipegate/backend-ca.crt", ServerName: "imap.internal"})
//
// # Session ticket keys
//
// Several pipegate instances behind one load balancer resume each other's
// TLS sessions when they read the same ticket key file. The file holds one
// or more keys, one per line, each 64 hexadecimal characters (32 random
// bytes); blank lines and lines starting with '#' are ignored. The first key
// encrypts new tickets; every key decrypts. To rotate: put a new key first,
// keep the previous one(s) below it, copy the file to every instance and
// reload them (SIGHUP); drop a key once tickets made with it have expired
// (Go issues tickets valid for 7 days at most). Make a key with:
//
//	openssl rand -hex 32
//
// The format is pipegate's own: nginx's ssl_session_ticket_key and
// HAProxy's tls-ticket-keys files (48 or 80 bytes per key) do not work here.
//
// Without a ticket key file each instance uses its own automatically
// rotated keys, kept across reloads.
package tlsconf

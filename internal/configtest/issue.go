package configtest

// IMAPIssue is the IMAP proxy issue's example config, with paths relative to a
// Fixture (WriteConfig).
const IMAPIssue = `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1993
    tls: true
tls:
  cert: server.crt
  key: server.key
backend_tls:
  ca: backend-ca.crt
routes_file: routes.yaml
`

// MailIssue is issue 12's file: a listener per protocol, IMAP the
// default, implicit TLS for POP3 and submission.
const MailIssue = `listen:
  - addr: 127.0.0.1:1143
  - addr: 127.0.0.1:1110
    protocol: pop3
  - addr: 127.0.0.1:1995
    protocol: pop3
    tls: true
  - addr: 127.0.0.1:4190
    protocol: sieve
  - addr: 127.0.0.1:1587
    protocol: submission
  - addr: 127.0.0.1:1465
    protocol: submission
    tls: true
tls:
  cert: server.crt
  key: server.key
backend_tls:
  ca: backend-ca.crt
routes_file: routes.yaml
`

// MailRoutes give alice a backend per protocol, as docs/mail.md shows.
const MailRoutes = `routes:
  - account: alice@a.test
    backends: [imap://127.0.0.1:14301, pop3://127.0.0.1:11001, sieve+starttls://127.0.0.1:4190, submissions://127.0.0.1:4650]
  - domain: b.test
    backends: [imaps://127.0.0.1:19932, pop3s://127.0.0.1:19952]
default: [imap+starttls://127.0.0.1:14301, pop3+starttls://127.0.0.1:11001, submission+starttls://127.0.0.1:5870]
`

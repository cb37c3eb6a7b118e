package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// maxDemoMessage bounds a submitted message.
const maxDemoMessage = 1 << 20

// submissionBackend is an SMTP submission server (go-smtp) with AUTH
// PLAIN against its host's accounts. A message is accepted only from the
// logged-in account, to demo accounts, and delivered at once to their
// INBOX (IMAP) and maildrop (POP3), on whichever host holds them.
type submissionBackend struct {
	srv  *smtp.Server
	ln   net.Listener
	host *host
	log  *slog.Logger
	done chan struct{} // closed when Serve returned
}

func startSubmissionBackend(h *host, logger *slog.Logger) (*submissionBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo %s submission: %w", h.name, err)
	}
	b := &submissionBackend{ln: ln, host: h, log: logger, done: make(chan struct{})}
	b.srv = smtp.NewServer(smtp.BackendFunc(b.newSession))
	b.srv.Domain = strings.ReplaceAll(h.name, " ", "") + ".demo.test"
	b.srv.MaxMessageBytes = maxDemoMessage
	b.srv.MaxRecipients = 10
	b.srv.AllowInsecureAuth = true // loopback between proxy and backend
	b.srv.ErrorLog = discardSMTPLog{}
	go serveSubmission(b)
	return b, nil
}

// serveSubmission is the goroutine accepting a submission backend's
// connections.
func serveSubmission(b *submissionBackend) {
	defer close(b.done)
	_ = b.srv.Serve(b.ln) // ends with close
}

func (b *submissionBackend) addr() string { return b.ln.Addr().String() }

func (b *submissionBackend) close() error {
	err := b.srv.Close()
	// go-smtp's Close closes only the listeners Serve has registered: a
	// Close before serveSubmission got there (a Start that fails at once)
	// left Serve accepting for ever.
	b.ln.Close()
	<-b.done
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

func (b *submissionBackend) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &submissionSession{b: b, helo: c.Hostname()}, nil
}

// submissionSession is one SMTP connection.
type submissionSession struct {
	b    *submissionBackend
	helo string
	box  *mailbox // after AUTH
	from string
	to   []*mailbox
}

var _ smtp.AuthSession = (*submissionSession)(nil)

func (s *submissionSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *submissionSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(authz, user, pass string) error {
		if authz != "" && !strings.EqualFold(authz, user) {
			return smtp.ErrAuthFailed
		}
		box, ok := s.b.host.login(user, pass)
		if !ok {
			return smtp.ErrAuthFailed
		}
		s.box = box
		return nil
	}), nil
}

func (s *submissionSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.box == nil {
		return smtp.ErrAuthRequired
	}
	if !strings.EqualFold(from, s.box.account.User) {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "Sender address is not yours: use <" + s.box.account.User + ">"}
	}
	s.from = from
	return nil
}

func (s *submissionSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	box := s.b.host.store.boxes[strings.ToLower(to)]
	if box == nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "No such demo account (the demo delivers to its own accounts only)"}
	}
	s.to = append(s.to, box)
	return nil
}

func (s *submissionSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp answers a message too large itself
	}
	now := time.Now()
	var subject string
	if m, err := mail.ReadMessage(bytes.NewReader(body)); err == nil {
		subject = m.Header.Get("Subject")
	}
	for _, box := range s.to {
		received := fmt.Sprintf("Received: from %s by %s with ESMTPSA for <%s>; %s\r\n",
			s.helo, s.b.srv.Domain, box.account.User, now.Format(time.RFC1123Z))
		msg := append([]byte(received), crlf(body)...)
		if err := box.add(msg, now); err != nil {
			return fmt.Errorf("demo: deliver to %s: %w", box.account.User, err)
		}
		n := s.b.host.store.delivered.Add(1)
		s.b.log.Info("demo: message delivered", "backend", s.b.host.name, "from", s.from,
			"to", box.account.User, "subject", subject, "octets", len(msg), "delivered_total", n)
	}
	s.to = nil
	return nil
}

func (s *submissionSession) Reset()        { s.from, s.to = "", nil }
func (s *submissionSession) Logout() error { return nil }

// crlf turns bare LF line ends into CRLF, as stored messages have them.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// discardSMTPLog drops go-smtp's per-connection errors (clients that hang
// up), which would only clutter the demo's output.
type discardSMTPLog struct{}

func (discardSMTPLog) Printf(string, ...any) {}
func (discardSMTPLog) Println(...any)        {}

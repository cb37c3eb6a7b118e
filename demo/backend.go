package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Account is a demo mailbox owner.
type Account struct {
	User     string // login name, user@domain
	Password string
	Backend  int      // index into Demo.Backends
	Subjects []string // of the messages in INBOX, oldest first
}

// DefaultAccounts are the accounts `pipegate demo` serves: routed by
// account (alice), by domain (bob) and by the default route (carol).
func DefaultAccounts() []Account {
	return []Account{
		{User: "alice@a.test", Password: "alice-pw", Backend: 0, Subjects: []string{"Welcome to pipegate", "Routed by account", "Lunch on Friday?"}},
		{User: "carol@a.test", Password: "carol-pw", Backend: 0, Subjects: []string{"Routed by the default route"}},
		{User: "bob@b.test", Password: "bob-pw", Backend: 1, Subjects: []string{"Hello from backend 2", "Routed by domain b.test"}},
	}
}

// memBackend is an in-memory IMAP server (go-imap's imapmemserver) on a
// loopback port.
type memBackend struct {
	srv  *imapserver.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returned
	err  error
}

// startMemBackend serves the host's mailboxes over IMAP on a free
// loopback port.
func startMemBackend(h *host, logger *log.Logger) (*memBackend, error) {
	mem := imapmemserver.New()
	for _, mb := range h.boxes {
		mem.AddUser(mb.imap)
	}
	name := h.name
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo %s: %w", name, err)
	}
	b := &memBackend{
		srv: imapserver.New(&imapserver.Options{
			NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
				return mem.NewSession(), nil, nil
			},
			Caps:         imapv2.CapSet{imapv2.CapIMAP4rev1: {}},
			InsecureAuth: true, // loopback between proxy and backend
			Logger:       logger,
		}),
		ln:   ln,
		done: make(chan struct{}),
	}
	go serveMemBackend(b)
	return b, nil
}

// serveMemBackend is the goroutine accepting a backend's connections.
func serveMemBackend(b *memBackend) {
	b.err = b.srv.Serve(b.ln)
	close(b.done)
}

func (b *memBackend) addr() string { return b.ln.Addr().String() }

// close stops the backend and closes its connections.
func (b *memBackend) close() error {
	err := b.srv.Close()
	b.ln.Close() // a Close before Serve registered it leaves it open
	<-b.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

var demoEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func demoMessage(to, subject string, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: pipegate demo <demo@pipegate.test>\r\n")
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", demoEpoch.Add(time.Duration(i)*time.Hour).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%s@pipegate.test>\r\n", i, to)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "Message %d for %s: %s.\r\n", i+1, to, subject)
	return b.Bytes()
}

// silentLogger discards go-imap's per-connection error messages (clients
// that hang up), which would only clutter the demo's output.
func silentLogger() *log.Logger { return log.New(io.Discard, "", 0) }

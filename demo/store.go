package demo

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// mailbox is a demo account's mail and Sieve scripts, shared by the
// in-memory backends of its host: IMAP reads its INBOX from imap, POP3
// from msgs, and a message submitted to the account goes to both.
type mailbox struct {
	account Account
	imap    *imapmemserver.User

	mu      sync.Mutex
	msgs    [][]byte          // POP3's maildrop: the demo messages, then those delivered
	scripts map[string]string // ManageSieve: name → script
	active  string            // the active script's name; "": none
}

// newMailbox makes a's mailbox with its demo messages.
func newMailbox(a Account) (*mailbox, error) {
	u := imapmemserver.NewUser(a.User, a.Password)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("create INBOX of %s: %w", a.User, err)
	}
	mb := &mailbox{account: a, imap: u, scripts: map[string]string{}}
	for i, subject := range a.Subjects {
		if err := mb.add(demoMessage(a.User, subject, i), demoEpoch.Add(time.Duration(i)*time.Hour)); err != nil {
			return nil, err
		}
	}
	return mb, nil
}

// add appends msg to the INBOX (IMAP) and the maildrop (POP3).
func (mb *mailbox) add(msg []byte, t time.Time) error {
	if _, err := mb.imap.Append("INBOX", bytes.NewReader(msg), &imapv2.AppendOptions{Time: t}); err != nil {
		return fmt.Errorf("append to %s: %w", mb.account.User, err)
	}
	mb.mu.Lock()
	mb.msgs = append(mb.msgs, msg)
	mb.mu.Unlock()
	return nil
}

// maildrop is a snapshot of the POP3 maildrop, taken at login.
func (mb *mailbox) maildrop() [][]byte {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([][]byte(nil), mb.msgs...)
}

// mailStore holds every demo account's mailbox. The map is not changed
// after Start; each mailbox locks itself.
type mailStore struct {
	boxes     map[string]*mailbox // lower-case account → mailbox
	delivered atomic.Int64        // messages delivered by the submission backends
}

func newMailStore(accounts []Account) (*mailStore, error) {
	st := &mailStore{boxes: map[string]*mailbox{}}
	for _, a := range accounts {
		mb, err := newMailbox(a)
		if err != nil {
			return nil, err
		}
		st.boxes[strings.ToLower(a.User)] = mb
	}
	return st, nil
}

// host is one of the demo's in-memory mail hosts: the accounts whose mail
// it holds, served by IMAP, POP3, ManageSieve and submission backends.
type host struct {
	name  string              // "backend 1"
	boxes map[string]*mailbox // its accounts, lower-case name → mailbox
	store *mailStore          // every account: submission delivers to any
}

// login checks a password against the host's own accounts: a login routed
// to the wrong host fails, as it would with real servers.
func (h *host) login(user, password string) (*mailbox, bool) {
	mb := h.boxes[strings.ToLower(user)]
	if mb == nil || mb.account.Password != password {
		return nil, false
	}
	return mb, true
}

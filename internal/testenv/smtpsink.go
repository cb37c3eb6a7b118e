package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// SinkMessage is one message an SMTPSink accepted.
type SinkMessage struct {
	From       string   // MAIL FROM
	To         []string // RCPT TO, in order
	Data       []byte   // the message as received after DATA (CRLF line ends)
	RemoteAddr string   // the SMTP client's address (Dovecot's relay connection)
	Helo       string   // the client's EHLO/HELO name
}

// SMTPSink is an in-process SMTP server on loopback that accepts every
// message (no authentication, no TLS) and keeps it in memory. Dovecot's
// submission service relays to it (submission_relay_host), so a test can
// check what arrived.
type SMTPSink struct {
	Addr string // 127.0.0.1:port

	server   *smtp.Server
	listener *sinkListener
	served   chan struct{} // closed when serveSink returns
	once     sync.Once
	closeErr error

	mu       sync.Mutex
	messages []SinkMessage
	arrived  chan struct{} // closed and replaced on every message
}

// StartSMTPSink starts a sink for the test and stops it in t.Cleanup.
func StartSMTPSink(t testing.TB) *SMTPSink {
	t.Helper()
	s, err := NewSMTPSink()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return s
}

// NewSMTPSink starts a sink on a free port of 127.0.0.1. The caller must
// Close it.
func NewSMTPSink() (*SMTPSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtp sink: listen: %w", err)
	}
	s := &SMTPSink{
		Addr:     l.Addr().String(),
		listener: &sinkListener{Listener: l, conns: make(map[net.Conn]struct{})},
		served:   make(chan struct{}),
		arrived:  make(chan struct{}),
	}
	s.server = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.server.Domain = "sink.test"
	s.server.ErrorLog = log.New(io.Discard, "", 0)
	s.server.ReadTimeout = time.Minute
	s.server.WriteTimeout = time.Minute
	go serveSink(s)
	return s, nil
}

// serveSink runs the SMTP server's accept loop until Close.
func serveSink(s *SMTPSink) {
	defer close(s.served)
	_ = s.server.Serve(s.listener) // ends with the listener's close error
}

// Close stops accepting, closes open sessions and waits until every
// goroutine of the sink has returned. Calls after the first return the
// first's result.
func (s *SMTPSink) Close() error {
	s.once.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

// close is Close on a possibly nil sink.
func (s *SMTPSink) close() error {
	if s == nil {
		return nil
	}
	return s.Close()
}

func (s *SMTPSink) shutdown() error {
	err := s.listener.closeAll()
	<-s.served
	// The listener and every connection are closed: the session goroutines
	// end on their next read, and Shutdown waits for them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := s.server.Shutdown(ctx); serr != nil && !errors.Is(serr, net.ErrClosed) {
		return fmt.Errorf("smtp sink %s: shutdown: %w", s.Addr, serr)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtp sink %s: close: %w", s.Addr, err)
	}
	return nil
}

// Messages returns a copy of the messages received so far.
func (s *SMTPSink) Messages() []SinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SinkMessage(nil), s.messages...)
}

// ErrNoMessage is returned by Await when no message matched in time.
var ErrNoMessage = errors.New("no matching message at the SMTP sink")

// Await returns the first message (received before or during the call)
// for which match is true (any message when match is nil), or an error
// wrapping ErrNoMessage when ctx ends first.
func (s *SMTPSink) Await(ctx context.Context, match func(SinkMessage) bool) (SinkMessage, error) {
	for {
		s.mu.Lock()
		msgs, arrived := s.messages, s.arrived
		s.mu.Unlock()
		for _, m := range msgs {
			if match == nil || match(m) {
				return m, nil
			}
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return SinkMessage{}, fmt.Errorf("%w (%s, %d received): %w", ErrNoMessage, s.Addr, len(msgs), ctx.Err())
		}
	}
}

// WaitMessage is Await with a 10 s limit that fails the test.
func (s *SMTPSink) WaitMessage(t testing.TB, match func(SinkMessage) bool) SinkMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Await(ctx, match)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *SMTPSink) add(m SinkMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A new slice each time: Await reads the old one without the lock.
	s.messages = append(s.messages[:len(s.messages):len(s.messages)], m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *SMTPSink) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{sink: s, remote: c.Conn().RemoteAddr().String(), helo: c.Hostname()}, nil
}

// sinkSession collects one transaction at a time.
type sinkSession struct {
	sink         *SMTPSink
	remote, helo string
	from         string
	to           []string
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("smtp sink: data: %w", err)
	}
	ss.sink.add(SinkMessage{From: ss.from, To: ss.to, Data: b, RemoteAddr: ss.remote, Helo: ss.helo})
	ss.Reset()
	return nil
}

// sinkListener remembers the connections it accepted so that Close can
// end them: go-smtp's Server.Close does not wait for its goroutines, and
// Shutdown waits for clients that may never leave.
type sinkListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *sinkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &sinkConn{Conn: c, l: l}, nil
}

// closeAll closes the listener and every accepted connection.
func (l *sinkListener) closeAll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	err := l.Listener.Close()
	for c := range l.conns {
		c.Close()
	}
	return err
}

// sinkConn forgets itself in the listener when closed.
type sinkConn struct {
	net.Conn
	l *sinkListener
}

func (c *sinkConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

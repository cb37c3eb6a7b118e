// Package linetest checks, for the mail protocols' codecs, that a reader
// answers input over its limit while the peer waits: the peer sends its
// bytes and then neither sends nor closes.
//
//	err := linetest.ReadStalled(t, "USER "+strings.Repeat("x", 300), 16, func(br *bufio.Reader) error {
//		_, err := wire.NewReader(br).ReadCommand()
//		return err
//	})
package linetest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// Timeout bounds the wait for an answer that must come without any more
// input; it only decides when a broken reader fails the test.
const Timeout = 10 * time.Second

// ReadStalled feeds sent to read through a net.Pipe whose writer then
// keeps the connection open without sending anything more, and returns
// what read gave. It fails the test if read never returns.
func ReadStalled(t testing.TB, sent string, bufSize int, read func(*bufio.Reader) error) error {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	defer client.Close() // ends stallingClient's write if the reader stopped early
	go stallingClient(client, sent)
	done := make(chan error, 1)
	go readOnce(bufio.NewReaderSize(server, bufSize), read, done)
	select {
	case err := <-done:
		return err
	case <-time.After(Timeout):
		client.Close()
		server.Close()
		<-done
		t.Fatalf("no answer to %d bytes while the peer waits", len(sent))
		return nil
	}
}

// stallingClient sends s and then neither sends nor closes.
func stallingClient(c net.Conn, s string) { _, _ = c.Write([]byte(s)) }

func readOnce(br *bufio.Reader, read func(*bufio.Reader) error, done chan<- error) {
	done <- read(br)
}

package demo

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
)

// maxLine bounds a command line the POP3 and ManageSieve backends read.
const maxLine = 8 << 10

var errLineTooLong = errors.New("line too long")

// tcpServer accepts connections on a loopback port and runs handle for
// each in its own goroutine, until close: the backends' accept loop.
type tcpServer struct {
	ln     net.Listener
	handle func(net.Conn)

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // the accept loop and the connections
}

// startTCPServer listens on a free loopback port and serves it.
func startTCPServer(name string, handle func(net.Conn)) (*tcpServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo %s: %w", name, err)
	}
	s := &tcpServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go acceptTCP(s)
	return s, nil
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

// acceptTCP is the goroutine accepting a backend's connections.
func acceptTCP(s *tcpServer) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed (a loopback listener has no other reason to fail)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go serveTCPConn(s, c)
	}
}

// serveTCPConn is the goroutine serving one backend connection.
func serveTCPConn(s *tcpServer, c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	s.handle(c)
}

// close stops accepting, closes every connection and waits for their
// goroutines.
func (s *tcpServer) close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// readLine reads a CRLF (or LF) terminated line of at most maxLine octets
// and returns it without the line ending.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return "", errLineTooLong
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

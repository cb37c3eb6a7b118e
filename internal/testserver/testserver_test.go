package testserver

import (
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEchoAndGreet(t *testing.T) {
	echo := Start(t, nil, 10*time.Second, Echo)
	c, err := net.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
		t.Fatalf("echo gave %q, %v", b, err)
	}
	hello := Start(t, nil, 10*time.Second, Greet("hello"))
	g, err := net.Dial("tcp", hello)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if b, err := io.ReadAll(g); err != nil || string(b) != "hello" {
		t.Fatalf("greet gave %q, %v", b, err)
	}
}

func TestFullListener(t *testing.T) {
	ap := FullListener(t)
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	c, err := d.Dial("tcp", ap.String())
	if err == nil {
		c.Close()
		t.Fatal("a connect to the full listener completed")
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("connect: %v, want a timeout", err)
	}
}

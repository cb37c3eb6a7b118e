package procfs

import (
	"net"
	"testing"
)

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	text := "cpu  10 20 30 400 50 6 7 8 900 1000\ncpu0 5 10 15 200 25 3 3 4 450 500\nintr 1 2\n"
	if got, err := parseMachineCPU(text); err != nil || got != 81 {
		t.Errorf("parseMachineCPU = %d, %v; want 81 (all but idle, iowait, guest)", got, err)
	}
	// An old kernel without steal and guest.
	if got, err := parseMachineCPU("cpu 1 2 3 4 5 6 7\n"); err != nil || got != 19 {
		t.Errorf("parseMachineCPU of 7 fields = %d, %v; want 19", got, err)
	}
}

func TestMachineCPU(t *testing.T) {
	busy, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 {
		t.Errorf("MachineCPU = %v; want > 0 since boot", busy)
	}
}

func TestParseTCPOutSegs(t *testing.T) {
	text := "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm ActiveOpens InSegs OutSegs RetransSegs\nTcp: 1 5 700 800 9\nUdp: InDatagrams OutSegs\nUdp: 1 2\n"
	if got, err := parseTCPOutSegs(text); err != nil || got != 800 {
		t.Errorf("parseTCPOutSegs = %d, %v; want 800", got, err)
	}
	for _, bad := range []string{"Ip: a\nIp: 1\n", "Tcp: InSegs OutSegs\nTcp: 1\n", "Tcp: OutSegs\nTcp: x\n"} {
		if _, err := parseTCPOutSegs(bad); err == nil {
			t.Errorf("parseTCPOutSegs(%q): no error", bad)
		}
	}
}

// TestTCPOutSegs: a TCP exchange on loopback raises the count by at
// least its segments (the handshake's SYN and SYN-ACK at least).
func TestTCPOutSegs(t *testing.T) {
	before, err := TCPOutSegs()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	after, err := TCPOutSegs()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 2 {
		t.Errorf("TCPOutSegs grew by %d over a loopback handshake; want >= 2", after-before)
	}
}

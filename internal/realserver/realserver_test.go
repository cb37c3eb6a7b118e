package realserver

import (
	"net"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

func TestRedisStopStart(t *testing.T) {
	r, err := StartRedis(t.TempDir())
	Need(t, err)
	defer r.Stop()
	if err := dial(t, r.Addr); err != nil {
		t.Fatalf("dial after start: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, r.Addr); err == nil {
		t.Fatal("dial after stop: no error")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, r.Addr); err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
}

func TestSlapd(t *testing.T) {
	s, err := StartSlapd(t.TempDir(), SlapdConfig{Suffix: "dc=pipegate,dc=test"})
	Need(t, err)
	defer s.Stop()
	if err := dial(t, s.URL[len("ldap://"):]); err != nil {
		t.Fatal(err)
	}
	if err := dial(t, s.TLSURL[len("ldaps://"):]); err != nil {
		t.Fatal(err)
	}
}

func TestPostgres(t *testing.T) {
	p, err := StartPostgres(t.TempDir())
	Need(t, err)
	defer p.Stop()
	if err := dial(t, p.Addr); err != nil {
		t.Fatal(err)
	}
}

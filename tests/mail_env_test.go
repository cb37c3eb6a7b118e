package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mailProc is `pipegate mail --config FILE` running as a process, stopped
// by SIGTERM in t.Cleanup with a check of a clean exit and of a log
// without the given secrets.
type mailProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
	secrets []string
}

// startMail writes config next to the test's files and runs pipegate mail
// on it until every addr answers.
func startMail(t *testing.T, dir, config string, secrets []string, addrs ...string) *mailProc {
	t.Helper()
	path := filepath.Join(dir, "mail.yaml")
	writeFile(t, path, config)
	if out, err := exec.Command(pipegateBin, "check-config", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok (") {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	p := &mailProc{t: t, logPath: filepath.Join(dir, "pipegate-mail.log"), exited: make(chan struct{}), secrets: secrets}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p.cmd = exec.Command(pipegateBin, "mail", "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go waitMailProc(p)
	t.Cleanup(p.stop)
	for _, a := range addrs {
		if err := p.waitListening(a); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// waitMailProc reaps the process.
func waitMailProc(p *mailProc) {
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

func (p *mailProc) waitListening(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("pipegate mail exited (%v) before listening on %s:\n%s", p.waitErr, addr, p.log())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipegate mail: nothing listens on %s:\n%s", addr, p.log())
		}
	}
}

func (p *mailProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// stop sends SIGTERM and checks a clean exit and the log.
func (p *mailProc) stop() {
	t := p.t
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("pipegate mail did not stop within 20s of SIGTERM")
		}
	}
	log := p.log()
	if p.waitErr != nil {
		t.Errorf("pipegate mail exit: %v", p.waitErr)
	}
	if !strings.Contains(log, "mail: stopped") {
		t.Errorf("no \"mail: stopped\" in the log")
	}
	for _, s := range p.secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds the secret %q", s)
		}
	}
	if strings.Contains(log, "panic") {
		t.Errorf("the log shows a panic")
	}
	if t.Failed() {
		t.Logf("pipegate mail log:\n%s", log)
	}
}

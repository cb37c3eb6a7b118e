package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestDemoCommands runs `pipegate demo` in-process, runs every printed
// command line (IMAP, POP3, submission, ManageSieve) as a shell would, and
// stops the demo as Ctrl-C does.
func TestDemoCommands(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // other tests of the package may leave theirs
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr strings.Builder // written by the demo's goroutines: read only after done
	done := make(chan int, 1)
	go func() {
		args := []string{"--log-level", "warn"}
		for _, f := range []string{"plain", "tls", "pop3", "pop3s", "sieve", "submission", "submissions"} {
			args = append(args, "--"+f, "127.0.0.1:0")
		}
		code := runDemo(ctx, args, outW, &stderr)
		outW.Close()
		done <- code
	}()
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, 1<<20)
	var commands []string
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"curl ", "printf ", "python3 "} {
			if strings.HasPrefix(line, p) {
				commands = append(commands, strings.ReplaceAll(line, "/tmp/pipegate-demo.sieve", t.TempDir()+"/demo.sieve"))
			}
		}
		if strings.Contains(line, "Ctrl-C stops") {
			break
		}
	}
	// What each command, in the printed order, must show.
	wants := []struct{ protocol, tool, want string }{
		{"IMAP", "curl", "Lunch on Friday?"},
		{"POP3 LIST", "curl", "2 270"},
		{"POP3 RETR", "curl", "Subject: Hello from backend 2"},
		{"submission", "curl", ""},
		{"ManageSieve", "", `"pipegate-demo" ACTIVE`},
	}
	if len(commands) != len(wants) {
		cancel()
		go io.Copy(io.Discard, outR)
		<-done
		t.Fatalf("%d command lines, want %d: %q; stderr: %s", len(commands), len(wants), commands, stderr.String())
	}
	for i, w := range wants {
		cmd := commands[i]
		if w.tool != "" && !strings.Contains(cmd, w.tool) {
			t.Errorf("%s: %q does not use %s", w.protocol, cmd, w.tool)
		}
		if strings.Contains(cmd, "sieve-connect") {
			if _, err := exec.LookPath("sieve-connect"); err != nil {
				t.Logf("%s: sieve-connect not installed, not run", w.protocol)
				continue
			}
		}
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %s: %v\n%s", w.protocol, cmd, err, out)
			continue
		}
		if !strings.Contains(string(out), w.want) {
			t.Errorf("%s: output of %s lacks %q:\n%s", w.protocol, cmd, w.want, out)
		}
	}
	// The message submitted above is in bob's maildrop now: POP3 again.
	if out, err := exec.Command("sh", "-c", commands[1]).CombinedOutput(); err != nil || !strings.Contains(string(out), "\n3 ") {
		t.Errorf("POP3 after submission: %v\n%s", err, out)
	}
	cancel()
	go io.Copy(io.Discard, outR) // "stopped"
	if code := <-done; code != 0 {
		t.Fatalf("demo exit code %d; stderr: %s", code, stderr.String())
	}
}

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

// TestDemoCurlLine runs `pipegate demo` in-process, runs the printed curl
// line as a shell would, and stops the demo as Ctrl-C does.
func TestDemoCurlLine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // other tests of the package may leave theirs
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		code := runDemo(ctx, []string{"--plain", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--log-level", "warn"}, outW, &stderr)
		outW.Close()
		done <- code
	}()
	sc := bufio.NewScanner(outR)
	var curl string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "curl ") && curl == "" {
			curl = line
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	if curl == "" {
		t.Fatalf("no line starting with \"curl \"; stderr: %s", stderr.String())
	}
	out, err := exec.Command("sh", "-c", curl).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", curl, err, out)
	}
	for _, want := range []string{"* 1 FETCH", "* 3 FETCH", "Welcome to pipegate", "Lunch on Friday?"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("curl output lacks %q:\n%s", want, out)
		}
	}
	cancel()
	go io.Copy(io.Discard, outR) // "stopped"
	if code := <-done; code != 0 {
		t.Fatalf("demo exit code %d; stderr: %s", code, stderr.String())
	}
}

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/forward"
)

// writeCLIFile writes text to name in dir and returns the path.
func writeCLIFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkConfig runs `pipegate check-config path` in-process.
func checkConfig(path string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = runCheckConfig([]string{path}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheckConfigTopLevelErrors: a top-level key given twice, or a top
// level that is not a mapping, gets the loader's error naming file, line
// and field, as `pipegate forward --config` and `pipegate imap --config`
// give it, not yaml's own (which names Go types).
func TestCheckConfigTopLevelErrors(t *testing.T) {
	dir := t.TempDir()
	writeCLIFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:1\n")
	for _, tc := range []struct{ name, text, want string }{
		{"fwd-dup.yaml", "log_level: info\nlog_level: debug\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n", ":2: log_level: given twice (also on line 1)"},
		{"mail-dup.yaml", "listen: [{addr: 127.0.0.1:0}]\nroutes_file: routes.yaml\nroutes_file: routes.yaml\n", ":3: routes_file: given twice (also on line 2)"},
		{"list.yaml", "- a\n- b\n", ":1: want a mapping"},
	} {
		path := writeCLIFile(t, dir, tc.name, tc.text)
		code, _, stderr := checkConfig(path)
		if code != 2 || !strings.Contains(stderr, path+tc.want) || strings.Contains(stderr, "yaml.Node") {
			t.Errorf("check-config %s: exit %d, stderr %q; want exit 2 and %q", tc.name, code, stderr, path+tc.want)
		}
	}
}

// TestAffinityDocExample: docs/affinity.md's configuration example (its
// first yaml block) passes check-config.
func TestAffinityDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/affinity.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Configuration.*?```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no yaml block under ## Configuration in docs/affinity.md")
	}
	dir := t.TempDir()
	pass := writeCLIFile(t, dir, "probe.pass", "secret\n")
	pools := strings.ReplaceAll(string(m[1]), "/etc/pipegate/probe.pass", pass)
	writeCLIFile(t, dir, "routes.yaml", "routes:\n  - domain: example.net\n    backend: pool:shared\n")
	path := writeCLIFile(t, dir, "mail.yaml", "listen:\n  - addr: 127.0.0.1:0\nroutes_file: routes.yaml\n"+pools)
	if code, _, stderr := checkConfig(path); code != 0 {
		t.Errorf("docs/affinity.md's example (IMAP listener only): check-config exit %d:\n%s", code, stderr)
	}
}

// TestUsageDemoLine: `pipegate --help` says what README and `pipegate
// demo --help` say the demo runs: the IMAP, POP3, ManageSieve and
// submission proxies.
func TestUsageDemoLine(t *testing.T) {
	var out strings.Builder
	run(context.Background(), []string{"--help"}, &out, io.Discard)
	line := regexp.MustCompile(`(?m)^  demo .*$`).FindString(out.String())
	for _, p := range []string{"POP3", "ManageSieve", "submission"} {
		if !strings.Contains(line, p) {
			t.Errorf("pipegate --help: demo line %q does not name %s (README, demo --help do)", line, p)
		}
	}
}

// TestIMAPDocFlags: every flag `pipegate imap --help` lists is in
// docs/imap.md.
func TestIMAPDocFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/imap.md")
	if err != nil {
		t.Fatal(err)
	}
	var help strings.Builder
	runIMAP(context.Background(), []string{"--help"}, io.Discard, &help)
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help.String(), -1) {
		if !strings.Contains(string(doc), "`--"+m[1]) {
			t.Errorf("pipegate imap --help lists --%s; docs/imap.md does not mention it", m[1])
		}
	}
	if strings.Contains(string(doc), "has one flag") {
		t.Error(`docs/imap.md says "pipegate imap has one flag"`)
	}
}

// TestCheckConfigHelp: `pipegate check-config --help` prints its usage
// and exits 0, as every other command does, rather than read a file named
// "--help".
func TestCheckConfigHelp(t *testing.T) {
	code, stdout, stderr := checkConfig("--help")
	if code != 0 || strings.Contains(stderr, "open --help") {
		t.Errorf("check-config --help: exit %d, %q %q; want the usage and exit 0", code, stdout, stderr)
	}
}

// TestMailUsageSaysWhy: `pipegate mail` without --config, or with a
// stray argument, says what is wrong before the usage, as `pipegate
// forward` does, and exits 2.
func TestMailUsageSaysWhy(t *testing.T) {
	for _, args := range [][]string{nil, {"--config", "x.yaml", "extra"}} {
		var errOut strings.Builder
		code := runMail(context.Background(), args, io.Discard, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "--config") && !strings.Contains(errOut.String(), "extra") {
			t.Errorf("pipegate mail %q: exit %d, stderr %q", args, code, errOut.String())
			continue
		}
		if first, _, _ := strings.Cut(errOut.String(), "\n"); strings.HasPrefix(first, "usage:") {
			t.Errorf("pipegate mail %q: stderr starts with the usage, no reason: %q", args, first)
		}
	}
}

// TestPIDFileFolderMissing: a --pid-file in a directory that does not
// exist stops the start (exit 2, naming the flag) rather than serve
// without the pid file `pipegate upgrade` needs.
func TestPIDFileFolderMissing(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "run", "pipegate", "forward.pid")
	var errOut strings.Builder
	code := runForward(context.Background(), []string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--pid-file", pidFile,
		"--upgrade-dir", filepath.Join(t.TempDir(), "up")}, io.Discard, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--pid-file") || !strings.Contains(errOut.String(), "its directory") {
		t.Fatalf("exit %d, stderr %q; want 2 naming --pid-file and its directory", code, errOut.String())
	}
}

// TestForwardMetricsAddrChecked: a forward config's metrics_addr and the
// --metrics-addr flag are checked where they are given (exit 2 naming the
// key or the flag), not found wrong at start.
func TestForwardMetricsAddrChecked(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"127.0.0.1:99999", "nonsense"} {
		path := writeCLIFile(t, dir, "fwd.yaml", "metrics_addr: "+addr+"\nforwards:\n  - {listen: 127.0.0.1:0, to: [127.0.0.1:1]}\n")
		if code, stdout, stderr := checkConfig(path); code != 2 || !strings.Contains(stderr, path+":1: metrics_addr:") {
			t.Errorf("check-config with metrics_addr %q: exit %d, %q %q; want exit 2 naming %s:1: metrics_addr", addr, code, stdout, stderr, path)
		}
		o, err := fwdParseArgs([]string{"--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--metrics-addr", addr}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fwdLoad(o, forward.TLSCache{}); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
			t.Errorf("--metrics-addr %q: fwdLoad error %v; want one naming --metrics-addr", addr, err)
		}
	}
}

// TestCheckConfigSameAddressTwice: two listeners on one port written two
// ways (0.0.0.0:P and :P) are a config error, in a mail config and in a
// forward config, not an "address already in use" at start.
func TestCheckConfigSameAddressTwice(t *testing.T) {
	dir := t.TempDir()
	writeCLIFile(t, dir, "routes.yaml", "default: imap://127.0.0.1:1\n")
	mail := writeCLIFile(t, dir, "mail.yaml", "listen:\n  - addr: 0.0.0.0:11143\n  - addr: :11143\nroutes_file: routes.yaml\n")
	if code, stdout, stderr := checkConfig(mail); code != 2 || !strings.Contains(stderr, "listen[1].addr") {
		t.Errorf("mail: 0.0.0.0:11143 and :11143: exit %d, %q %q; want exit 2 naming listen[1].addr", code, stdout, stderr)
	}
	fwd := writeCLIFile(t, dir, "fwd.yaml", "forwards:\n  - {name: a, listen: 0.0.0.0:18081, to: [127.0.0.1:1]}\n  - {name: b, listen: ':18081', to: [127.0.0.1:1]}\n")
	if code, stdout, stderr := checkConfig(fwd); code != 2 || !strings.Contains(stderr, "forwards[1].listen") {
		t.Errorf("forward: 0.0.0.0:18081 and :18081: exit %d, %q %q; want exit 2 naming forwards[1].listen", code, stdout, stderr)
	}
}

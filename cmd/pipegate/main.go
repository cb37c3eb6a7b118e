// Command pipegate joins connections: a TCP/TLS port forwarder
// (`pipegate forward`) and a mail gateway that routes each login to the
// server holding the account (`pipegate mail`: IMAP, POP3, ManageSieve and
// submission listeners in one daemon; `pipegate imap`: the same with IMAP
// listeners only), both on the pipe core in package pipegate/pipe.
// `pipegate demo` runs the mail gateway (IMAP, POP3, ManageSieve and
// submission) in front of two in-memory mail servers, with nothing to
// install.
//
//	pipegate demo
//	pipegate forward --listen 127.0.0.1:8080 --to 127.0.0.1:9090
//	pipegate mail --config /etc/pipegate/mail.yaml
//	pipegate imap --config /etc/pipegate/imap.yaml
//	pipegate check-config /etc/pipegate/mail.yaml
//	pipegate upgrade --pid-file /run/pipegate/forward.pid
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

const usage = `usage: pipegate COMMAND [flags]

commands:
  demo                  the mail gateway (IMAP, POP3, ManageSieve, submission) in front of two in-memory mail servers (no setup)
  forward               TCP/TLS port forwarder (pipegate forward --help)
  mail                  mail gateway: IMAP, POP3, ManageSieve, submission (pipegate mail --config FILE)
  imap                  the mail gateway with IMAP listeners only (pipegate imap --config FILE)
  check-config FILE     validate a forward, mail or imap config file and exit
  ctl COMMAND           admin of user affinity on a running instance (pipegate ctl --help)
  upgrade               replace a running daemon's binary, keeping its sockets (pipegate upgrade --help)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code
// (0 ok, 1 runtime failure, 2 bad usage or config).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "forward":
		return runForward(ctx, args[1:], stdout, stderr)
	case "mail":
		return runMail(ctx, args[1:], stdout, stderr)
	case "imap":
		return runIMAP(ctx, args[1:], stdout, stderr)
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "ctl":
		return runCtl(ctx, args[1:], stdout, stderr)
	case "upgrade":
		return runUpgrade(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pipegate: unknown command %q\n%s", args[0], usage)
	return 2
}

// runCheckConfig validates a config file: a file with a top-level
// `forwards:` key is a forward config, anything else a mail config
// ("imap config" when every listener is IMAP's, so `pipegate imap` runs it).
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	const checkUsage = "usage: pipegate check-config FILE\n\nvalidates a forward, mail or imap config file (a file with a top-level forwards: key is a\nforward config) and exits: 0 and \"FILE: ok (KIND config)\" when it is valid, 2 and\nFILE:LINE: FIELD: problem for each error\n"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, checkUsage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	path := args[0]
	kind, err := configKind(path)
	if err == nil {
		if kind == "forward" {
			err = checkForwardConfig(path)
		} else {
			kind, err = checkMailConfigKind(path)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipegate: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "%s: ok (%s config)\n", path, kind)
	return 0
}

// configKind tells a forward config (a top-level forwards: key) from a
// mail one. It only looks: a file it cannot read as YAML, a top level
// that is not a mapping or a key given twice is left to the loader, whose
// errors name the file, line and field.
func configKind(path string) (string, error) {
	data, err := cfgfile.Read(path, cfgfile.Small)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 {
		return "imap", nil
	}
	if top := doc.Content[0]; top.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == "forwards" {
				return "forward", nil
			}
		}
	}
	return "imap", nil
}

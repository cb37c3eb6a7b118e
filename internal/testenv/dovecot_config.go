package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

// The protocols a Dovecot instance can serve (DovecotOptions.Protocols).
const (
	IMAP       = "imap"       // imap-login: imap (STARTTLS) and imaps
	POP3       = "pop3"       // pop3-login: pop3 (STLS) and pop3s
	Sieve      = "sieve"      // managesieve-login: sieve (STARTTLS); no implicit TLS
	Submission = "submission" // submission-login: submission (STARTTLS) and submissions
)

// protocolInfo says what each protocol needs: its Debian package, the
// binary that package installs, and its listeners (name and whether it is
// implicit TLS).
var protocolInfo = map[string]struct {
	pkg, binary string
	listeners   []listenerInfo
}{
	IMAP:       {"dovecot-imapd", "imap", []listenerInfo{{"imap", false}, {"imaps", true}}},
	POP3:       {"dovecot-pop3d", "pop3", []listenerInfo{{"pop3", false}, {"pop3s", true}}},
	Sieve:      {"dovecot-managesieved", "managesieve", []listenerInfo{{"sieve", false}}},
	Submission: {"dovecot-submissiond", "submission", []listenerInfo{{"submission", false}, {"submissions", true}}},
}

type listenerInfo struct {
	name string // inet_listener name, also the key of the ports map
	tls  bool
}

// libexecDir holds Dovecot's service binaries on Debian.
const libexecDir = "/usr/lib/dovecot"

// protocols returns opts.Protocols checked and in a fixed order, IMAP
// alone when empty.
func (opts DovecotOptions) protocols() ([]string, error) {
	if len(opts.Protocols) == 0 {
		return []string{IMAP}, nil
	}
	var out []string
	for _, p := range []string{IMAP, POP3, Sieve, Submission} {
		if slices.Contains(opts.Protocols, p) {
			out = append(out, p)
		}
	}
	for _, p := range opts.Protocols {
		if _, ok := protocolInfo[p]; !ok {
			return nil, fmt.Errorf("dovecot: DovecotOptions.Protocols: unknown protocol %q (want %s, %s, %s or %s)", p, IMAP, POP3, Sieve, Submission)
		}
	}
	return out, nil
}

// missingPackages names the Debian packages whose service binaries are
// not installed for the given protocols.
func missingPackages(protocols []string) []string {
	var missing []string
	for _, p := range protocols {
		info := protocolInfo[p]
		if _, err := os.Stat(filepath.Join(libexecDir, info.binary)); err != nil {
			missing = append(missing, info.pkg)
		}
	}
	return missing
}

// configData fills configTemplate.
type configData struct {
	Dir, Name, Cert, Key string
	UID                  int
	Trusted, Passdb      string
	Protocols            []string
	Ports                map[string]int // by listener name
	RelayHost            string
	RelayPort            string
	Extra                string
}

// Has reports whether protocol p is served (for the template).
func (c configData) Has(p string) bool { return slices.Contains(c.Protocols, p) }

// ProtocolList is the value of the protocols setting.
func (c configData) ProtocolList() string { return strings.Join(c.Protocols, " ") }

var configTemplate = template.Must(template.New("dovecot.conf").Parse(`# written by pipegate/internal/testenv
protocols = {{.ProtocolList}}
listen = 127.0.0.1
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
instance_name = pipegate-{{.Name}}
log_path = {{.Dir}}/dovecot.log
ssl = yes
ssl_cert = <{{.Cert}}
ssl_key = <{{.Key}}
ssl_dh = </usr/share/dovecot/dh.pem
default_internal_user = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {{.UID}}
mail_location = maildir:~/Maildir
{{- if .Trusted}}
login_trusted_networks = {{.Trusted}}
{{- end}}
{{if .Passdb}}{{.Passdb}}{{else}}passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{.Dir}}/users
}{{end}}
userdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
}
{{- if .Has "imap"}}
service imap-login {
  inet_listener imap {
    port = {{index .Ports "imap"}}
  }
  inet_listener imaps {
    port = {{index .Ports "imaps"}}
    ssl = yes
  }
}
{{- end}}
{{- if .Has "pop3"}}
pop3_uidl_format = %08Xu%08Xv
service pop3-login {
  inet_listener pop3 {
    port = {{index .Ports "pop3"}}
  }
  inet_listener pop3s {
    port = {{index .Ports "pop3s"}}
    ssl = yes
  }
}
{{- end}}
{{- if .Has "sieve"}}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
service managesieve-login {
  inet_listener sieve {
    port = {{index .Ports "sieve"}}
  }
}
{{- end}}
{{- if .Has "submission"}}
hostname = dovecot.test
submission_relay_host = {{.RelayHost}}
submission_relay_port = {{.RelayPort}}
submission_relay_trusted = no
submission_relay_ssl = no
service submission-login {
  inet_listener submission {
    port = {{index .Ports "submission"}}
  }
  inet_listener submissions {
    port = {{index .Ports "submissions"}}
    ssl = yes
  }
}
{{- end}}
service stats {
  inet_listener http {
    port = 0
  }
}
{{.Extra}}
`))

func writeConfig(path string, data configData) error {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, data); err != nil {
		return fmt.Errorf("dovecot: config: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	return nil
}

package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// cyrusUser runs Cyrus's services and owns its files (Debian's
// cyrus-common creates it).
const cyrusUser = "cyrus"

// writeFiles writes imapd.conf, the sasldb and the directories, owned by
// the cyrus user. cyrus.conf is written by writeServices, once the ports
// are known.
func (c *Cyrus) writeFiles(opts CyrusOptions) error {
	u, err := user.Lookup(cyrusUser)
	if err != nil {
		return fmt.Errorf("cyrus: user %q (made by cyrus-common): %w", cyrusUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{"conf", "conf/db", "conf/socket", "conf/proc", "conf/lock", "conf/log", "spool", "sieve", "tls", "dev", "realdev"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return fmt.Errorf("cyrus: %w", err)
		}
	}
	data := imapdConfData{
		Dir:            c.Dir,
		AllowPlaintext: !opts.RequireTLS,
		Extra:          opts.Extra,
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return fmt.Errorf("cyrus: CyrusOptions: CertFile and KeyFile go together (got %q and %q)", opts.CertFile, opts.KeyFile)
	}
	if opts.CertFile != "" {
		// Copies the cyrus user can read, wherever the test keeps its own.
		data.Cert, data.Key = filepath.Join(c.Dir, "tls", "server.crt"), filepath.Join(c.Dir, "tls", "server.key")
		for src, dst := range map[string]string{opts.CertFile: data.Cert, opts.KeyFile: data.Key} {
			b, err := os.ReadFile(src)
			if err != nil {
				return fmt.Errorf("cyrus: CyrusOptions: %w", err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				return fmt.Errorf("cyrus: %w", err)
			}
		}
	}
	var conf bytes.Buffer
	if err := imapdConf.Execute(&conf, data); err != nil {
		return fmt.Errorf("cyrus: imapd.conf: %w", err)
	}
	if err := os.WriteFile(c.Config, conf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cyrus: %w", err)
	}
	if err := c.writeUsers(opts.Users); err != nil {
		return err
	}
	for _, d := range []string{"conf", "spool", "sieve", "tls", "sasldb2"} {
		err := filepath.Walk(filepath.Join(c.Dir, d), func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("cyrus: %w", err)
		}
	}
	return nil
}

// writeUsers stores the users in the sasldb with saslpasswd2: user@domain
// as the user of realm domain, which is how Cyrus SASL looks up a login
// name with a domain.
func (c *Cyrus) writeUsers(users map[string]string) error {
	db := filepath.Join(c.Dir, "sasldb2")
	for _, account := range sortedKeys(users) {
		pass := users[account]
		if strings.ContainsAny(account+pass, "\n\x00") || account == "" {
			return fmt.Errorf("cyrus: CyrusOptions.Users: account %q: want a name, no newline or NUL in it or its password", account)
		}
		name, realm, ok := strings.Cut(account, "@")
		args := []string{"-f", db, "-p", "-c"}
		if ok {
			args = append(args, "-u", realm)
		} else {
			// Without a realm, saslpasswd2 would use the host's name; a
			// bare login is looked up with the servername's.
			args = append(args, "-u", cyrusServerName)
		}
		cmd := exec.Command(c.bins.saslpasswd, append(args, name)...)
		cmd.Stdin = strings.NewReader(pass)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cyrus: saslpasswd2 for %q: %v: %s", account, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// cyrusServerName is the instance's servername (its greeting's host).
const cyrusServerName = "cyrus.test"

// writeServices writes cyrus.conf for the given ports (by service name).
func (c *Cyrus) writeServices(ports map[string]int) error {
	var b bytes.Buffer
	err := cyrusConf.Execute(&b, cyrusConfData{
		Conf: c.Config, Ports: ports, LMTP: c.lmtpSocket(),
		Imapd: c.bins.imapd, Pop3d: c.bins.pop3d, Timsieved: c.bins.timsieved, Lmtpd: c.bins.lmtpd, Idled: c.bins.idled,
	})
	if err != nil {
		return fmt.Errorf("cyrus: cyrus.conf: %w", err)
	}
	if err := os.WriteFile(c.ServiceConfig, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cyrus: %w", err)
	}
	return nil
}

// lmtpSocket is where lmtpd listens, for deliver.
func (c *Cyrus) lmtpSocket() string { return filepath.Join(c.Dir, "conf", "socket", "lmtp") }

type imapdConfData struct {
	Dir, Cert, Key string
	AllowPlaintext bool
	Extra          string
}

// imapdConf is the instance's imapd.conf. Everything lives in the
// instance's directory; services are found by the master from cyrus.conf
// by full path, each given -C (the master does not pass its own -C on:
// without it a service reads /etc/imapd.conf).
//
//   - virtdomains userid: a login alice@a.test is user alice of domain
//     a.test, her INBOX a.test!user.alice.
//   - autocreate_quota 0: the INBOX is made at the first login (and at
//     the first delivery, autocreate_post), with no quota.
//   - failedloginpause 0: Cyrus's default waits 3 s after a failed
//     login before answering.
//   - imapidlepoll 1: a second between polls when idled cannot be
//     reached (it runs, from cyrus.conf's DAEMON section).
var imapdConf = template.Must(template.New("imapd.conf").Parse(`configdirectory: {{.Dir}}/conf
defaultpartition: default
partition-default: {{.Dir}}/spool
sievedir: {{.Dir}}/sieve
lmtpsocket: {{.Dir}}/conf/socket/lmtp
idlesocket: {{.Dir}}/conf/socket/idle
notifysocket: {{.Dir}}/conf/socket/notify
servername: ` + cyrusServerName + `
allowplaintext: {{if .AllowPlaintext}}yes{{else}}no{{end}}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {{.Dir}}/sasldb2
sasl_mech_list: PLAIN LOGIN
virtdomains: userid
unixhierarchysep: yes
autocreate_quota: 0
autocreate_post: yes
failedloginpause: 0
imapidlepoll: 1
{{- if .Cert}}
tls_server_cert: {{.Cert}}
tls_server_key: {{.Key}}
tls_versions: tls1_2 tls1_3
{{- end}}
{{.Extra}}
`))

type cyrusConfData struct {
	Conf                                  string
	Imapd, Pop3d, Timsieved, Lmtpd, Idled string
	Ports                                 map[string]int
	LMTP                                  string
}

// cyrusConf is the master's service list: each service on its loopback
// port, prefork=0 (a process is forked at the first connection), imaps
// and pop3s only with a certificate, lmtpd on a unix socket for deliver,
// idled for IDLE.
var cyrusConf = template.Must(template.New("cyrus.conf").Parse(`SERVICES {
  imap cmd="{{.Imapd}} -C {{.Conf}}" listen="127.0.0.1:{{.Ports.imap}}" prefork=0
{{- with .Ports.imaps}}
  imaps cmd="{{$.Imapd}} -s -C {{$.Conf}}" listen="127.0.0.1:{{.}}" prefork=0
{{- end}}
  pop3 cmd="{{.Pop3d}} -C {{.Conf}}" listen="127.0.0.1:{{.Ports.pop3}}" prefork=0
{{- with .Ports.pop3s}}
  pop3s cmd="{{$.Pop3d}} -s -C {{$.Conf}}" listen="127.0.0.1:{{.}}" prefork=0
{{- end}}
  sieve cmd="{{.Timsieved}} -C {{.Conf}}" listen="127.0.0.1:{{.Ports.sieve}}" prefork=0
  lmtpunix cmd="{{.Lmtpd}} -C {{.Conf}}" listen="{{.LMTP}}" prefork=0
}
DAEMON {
  idled cmd="{{.Idled}} -C {{.Conf}}"
}
`))

package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// postfixQueueDirs are the queue_directory's subdirectories as
// post-install makes them (owner postfix unless root is set; group
// postdrop when set, else root). Making them here saves the third of a
// second "postfix check" takes.
var postfixQueueDirs = []struct {
	name     string
	mode     os.FileMode
	root     bool // owned by root
	postdrop bool // group postdrop
}{
	{"active", 0o700, false, false}, {"bounce", 0o700, false, false},
	{"corrupt", 0o700, false, false}, {"defer", 0o700, false, false},
	{"deferred", 0o700, false, false}, {"flush", 0o700, false, false},
	{"hold", 0o700, false, false}, {"incoming", 0o700, false, false},
	{"private", 0o700, false, false}, {"saved", 0o700, false, false},
	{"trace", 0o700, false, false},
	{"maildrop", 0o730, false, true}, {"public", 0o710, false, true},
	{"pid", 0o755, true, false},
}

// makePostfixDirs makes etc/, queue/ (with its subdirectories) and data/
// (owned by postfix) under dir.
func makePostfixDirs(dir string) error {
	uid, gid, err := lookupIDs("postfix", "postfix")
	if err != nil {
		return err
	}
	_, dropGID, err := lookupIDs("", "postdrop")
	if err != nil {
		return err
	}
	for _, d := range []string{"etc", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	for _, q := range postfixQueueDirs {
		path := filepath.Join(dir, "queue", q.name)
		if err := os.Mkdir(path, q.mode); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
		owner, group := uid, 0
		if q.root {
			owner = 0
		}
		if q.postdrop {
			group = dropGID
		}
		if err := os.Chown(path, owner, group); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
		if err := os.Chmod(path, q.mode); err != nil { // past the umask
			return fmt.Errorf("postfix: %w", err)
		}
	}
	return nil
}

// lookupIDs returns the uid of userName (when not "") and the gid of
// groupName.
func lookupIDs(userName, groupName string) (uid, gid int, err error) {
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return 0, 0, fmt.Errorf("postfix: user %s (is the postfix package installed?): %w", userName, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	g, err := user.LookupGroup(groupName)
	if err != nil {
		return 0, 0, fmt.Errorf("postfix: group %s (is the postfix package installed?): %w", groupName, err)
	}
	gid, _ = strconv.Atoi(g.Gid)
	return uid, gid, nil
}

// writeSASLDB writes the Cyrus SASL configuration for smtpd (etc/sasl/smtpd.conf:
// auxprop sasldb, PLAIN and LOGIN) and the sasldb with users, readable by
// smtpd (which runs as postfix).
func writeSASLDB(dir string, users map[string]string) error {
	// Debian's smtpd reads $config_directory/sasl/smtpd.conf (with
	// cyrus_sasl_config_path empty, its default).
	saslDir := filepath.Join(dir, "etc", "sasl")
	if err := os.Mkdir(saslDir, 0o755); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	db := filepath.Join(saslDir, "sasldb2")
	conf := "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(saslDir, "smtpd.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("postfix: %w", err)
	}
	if len(users) == 0 {
		return nil // SASL on, and nobody can log in
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, name := range names {
		// The realm is the domain of user@domain, as Cyrus SASL splits
		// the name smtpd passes (smtpd_sasl_local_domain empty).
		local, realm, _ := strings.Cut(name, "@")
		cmd := exec.Command(sbin("saslpasswd2"), "-f", db, "-p", "-c", "-u", realm, local)
		cmd.Stdin = strings.NewReader(users[name])
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("postfix: saslpasswd2 %s: %w\n%s", name, err, out)
		}
	}
	uid, gid, err := lookupIDs("postfix", "postfix")
	if err != nil {
		return err
	}
	if err := os.Chown(db, uid, gid); err != nil {
		return fmt.Errorf("postfix: sasldb: %w", err)
	}
	return nil
}

// postfixConfig fills mainTemplate and masterTemplate.
type postfixConfig struct {
	Dir, Relay          string
	XCLIENT, MyNetworks string
	SASL                bool
	Cert, Key           string
	SizeLimit           int64
	Ports               []int
	Main                string
}

// writePostfixConfig writes etc/main.cf and etc/master.cf.
func writePostfixConfig(dir string, opts PostfixOptions, relay string, ports []int) error {
	xclient := strings.Join(opts.XCLIENTHosts, " ")
	if xclient == "" {
		xclient = "127.0.0.1/32"
	}
	if xclient == "none" {
		xclient = ""
	}
	host, port, err := net.SplitHostPort(relay)
	if err != nil {
		return fmt.Errorf("postfix: PostfixOptions.Relay %q: %w", relay, err)
	}
	c := postfixConfig{
		Dir: dir, Relay: "[" + host + "]:" + port,
		XCLIENT: xclient, MyNetworks: strings.Join(opts.MyNetworks, " "),
		SASL: opts.SASL, Cert: opts.CertFile, Key: opts.KeyFile,
		SizeLimit: opts.MessageSizeLimit, Ports: ports, Main: opts.Main,
	}
	for name, tmpl := range map[string]*template.Template{"main.cf": mainTemplate, "master.cf": masterTemplate} {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, c); err != nil {
			return fmt.Errorf("postfix: %s: %w", name, err)
		}
		path := filepath.Join(dir, "etc", name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
		// Postfix rereads a main.cf younger than two seconds every 0.3 s
		// until it is that old (it might be being edited): back-date it.
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(path, old, old); err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
	}
	return nil
}

// mainTemplate is main.cf: nothing delivered locally, everything relayed
// to the sink, relay only for SASL-authenticated clients (and
// MyNetworks), no DNS, no chroot (see masterTemplate), the log in a file
// of the instance.
var mainTemplate = template.Must(template.New("main.cf").Parse(`# written by pipegate/internal/testenv
compatibility_level = 3.6
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
maillog_file = {{.Dir}}/maillog
maillog_file_prefixes = {{.Dir}}
syslog_name = postfix-test
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {{.MyNetworks}}
relayhost = {{.Relay}}
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_authorized_xclient_hosts = {{.XCLIENT}}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_sasl_authenticated_header = yes
{{- if .SASL}}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_security_options = noanonymous
{{- end}}
{{- if .Cert}}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {{.Cert}}
smtpd_tls_key_file = {{.Key}}
smtpd_tls_received_header = yes
{{- end}}
{{- if .SizeLimit}}
message_size_limit = {{.SizeLimit}}
{{- end}}
{{.Main}}
`))

// masterTemplate is master.cf: the smtpd listeners on 127.0.0.1 and the
// services a relay needs, none chrooted (Debian's master.cf chroots most,
// which would need copies of /etc files in the queue directory).
var masterTemplate = template.Must(template.New("master.cf").Parse(`# written by pipegate/internal/testenv
127.0.0.1:{{index .Ports 0}} inet n - n - - smtpd
{{- if .Cert}}
127.0.0.1:{{index .Ports 1}} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
{{- end}}
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`))

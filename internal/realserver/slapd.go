package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// SlapdConfig says what directory to serve.
type SlapdConfig struct {
	Suffix string   // e.g. "dc=pipegate,dc=test"; the root entry is not created
	RootPW string   // password of RootDN (cn=admin,SUFFIX); default "secret"
	Schema []string // extra schema text (slapd.conf attributetype/objectclass lines)
}

// Slapd is an OpenLDAP server listening on ldap:// (StartTLS offered) and
// ldaps://, both on loopback, with a certificate from its own CA.
type Slapd struct {
	URL    string // ldap://127.0.0.1:PORT
	TLSURL string // ldaps://127.0.0.1:PORT
	RootDN string // cn=admin,SUFFIX, may write everything
	RootPW string
	CAFile string // the CA that signed the server certificate (for 127.0.0.1 and localhost)
	*proc
}

// StartSlapd writes a slapd.conf with an mdb database in dir and starts
// slapd (Debian packages slapd and ldap-utils). The schemas core, cosine,
// inetorgperson, nis and misc (mailHost, mailRoutingAddress) are loaded.
func StartSlapd(dir string, cfg SlapdConfig) (*Slapd, error) {
	path, err := find("slapd", "/usr/sbin/slapd")
	if err != nil {
		return nil, err
	}
	if cfg.Suffix == "" {
		return nil, fmt.Errorf("realserver: slapd: no Suffix")
	}
	if cfg.RootPW == "" {
		cfg.RootPW = "secret"
	}
	dir = filepath.Join(dir, "slapd")
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, fmt.Errorf("realserver: slapd: %w", err)
	}
	caFile, certFile, keyFile, err := writeCerts(dir)
	if err != nil {
		return nil, fmt.Errorf("realserver: slapd certificates: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tlsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	schemaDir := "/etc/ldap/schema"
	var conf strings.Builder
	for _, s := range []string{"core", "cosine", "inetorgperson", "nis", "misc"} {
		fmt.Fprintf(&conf, "include %s/%s.schema\n", schemaDir, s)
	}
	if len(cfg.Schema) > 0 {
		extra := filepath.Join(dir, "extra.schema")
		if err := os.WriteFile(extra, []byte(strings.Join(cfg.Schema, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("realserver: slapd: %w", err)
		}
		fmt.Fprintf(&conf, "include %s\n", extra)
	}
	rootDN := "cn=admin," + cfg.Suffix
	fmt.Fprintf(&conf, `pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[2]s
TLSCertificateFile %[3]s
TLSCertificateKeyFile %[4]s
database mdb
suffix %[5]q
rootdn %[6]q
rootpw %[7]s
directory %[1]s/db
maxsize 104857600
index mail eq
index uid eq
`, dir, caFile, certFile, keyFile, cfg.Suffix, rootDN, cfg.RootPW)
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		return nil, fmt.Errorf("realserver: slapd: %w", err)
	}
	s := &Slapd{
		URL:    "ldap://" + hostPort(port),
		TLSURL: "ldaps://" + hostPort(tlsPort),
		RootDN: rootDN,
		RootPW: cfg.RootPW,
		CAFile: caFile,
		proc: &proc{
			name: "slapd",
			path: path,
			// -d none: stay in the foreground and print only what matters.
			args:     []string{"-f", confFile, "-h", fmt.Sprintf("ldap://%s/ ldaps://%s/", hostPort(port), hostPort(tlsPort)), "-d", "none"},
			dir:      dir,
			ready:    "slapd starting",
			dialable: []string{hostPort(port), hostPort(tlsPort)},
			stopSig:  syscall.SIGTERM,
		},
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

package yamlconf

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pipegate/pipegate/tlsconf"
)

// ServerTLS is the block of files that terminate TLS:
//
//	tls:
//	  cert: /etc/pipegate/site.crt     # chain, leaf first (a combined PEM may be both)
//	  key: /etc/pipegate/site.key
//	  client_ca: /etc/pipegate/ca.crt  # optional: require client certificates
//	  ticket_keys: /etc/pipegate/tickets  # optional: shared by several instances
type ServerTLS struct {
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ClientCA   string `yaml:"client_ca"`
	TicketKeys string `yaml:"ticket_keys"`
}

// Files checks the block written at field ("tls") and returns its files,
// paths taken from the config file's folder: cert and key are required,
// and every file named must be readable. Errors name the key at fault
// ("tls.key: missing (tls.cert is set)").
func (t *ServerTLS) Files(d *Doc, field string) (tlsconf.ServerFiles, error) {
	f := tlsconf.ServerFiles{Cert: d.Path(t.Cert), Key: d.Path(t.Key), ClientCA: d.Path(t.ClientCA), TicketKeys: d.Path(t.TicketKeys)}
	var errs Errors
	switch {
	case t.Cert == "" && t.Key == "":
		errs.Add(d.Errorf(field+".cert", "missing (TLS needs a certificate and its key)"))
	case t.Cert == "":
		errs.Add(d.Errorf(field+".cert", "missing (a key without its certificate)"))
	case t.Key == "":
		errs.Add(d.Errorf(field+".key", "missing (a certificate without its key)"))
	}
	errs.Add(readable(d, field, "cert", f.Cert))
	errs.Add(readable(d, field, "key", f.Key))
	errs.Add(readable(d, field, "client_ca", f.ClientCA))
	errs.Add(readable(d, field, "ticket_keys", f.TicketKeys))
	return f, errs.Err()
}

// ClientTLS is the block of files for TLS towards a server (a backend, an
// upstream, Redis):
//
//	to_tls:
//	  ca: /etc/pipegate/ca.crt        # default: the system roots
//	  server_name: db.internal        # default: the host dialled
//	  cert: /etc/pipegate/client.crt  # optional client certificate
//	  key: /etc/pipegate/client.key
//
// Verification cannot be turned off here; a daemon that allows it (for
// tests) embeds the block inline next to its own insecure_skip_verify.
type ClientTLS struct {
	CA         string `yaml:"ca"`
	ServerName string `yaml:"server_name"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
}

// Files checks the block written at field and returns its files, paths
// taken from the config file's folder: cert and key go together, and every
// file named must be readable.
func (t *ClientTLS) Files(d *Doc, field string) (tlsconf.ClientFiles, error) {
	f := tlsconf.ClientFiles{CA: d.Path(t.CA), ServerName: t.ServerName, Cert: d.Path(t.Cert), Key: d.Path(t.Key)}
	var errs Errors
	switch {
	case t.Cert != "" && t.Key == "":
		errs.Add(d.Errorf(field+".key", "missing (a client certificate without its key)"))
	case t.Key != "" && t.Cert == "":
		errs.Add(d.Errorf(field+".cert", "missing (a client key without its certificate)"))
	}
	errs.Add(readable(d, field, "ca", f.CA))
	errs.Add(readable(d, field, "cert", f.Cert))
	errs.Add(readable(d, field, "key", f.Key))
	return f, errs.Err()
}

func readable(d *Doc, block, key, path string) error {
	if path == "" {
		return nil
	}
	if err := Readable(path); err != nil {
		return d.Error(block+"."+key, err)
	}
	return nil
}

// Readable checks that path is a file with at least one byte that this
// process may read, so that a config check fails on the key that names
// it rather than later, in a TLS library's words.
func Readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty file", path)
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

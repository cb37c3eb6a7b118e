package yamlconf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pipegate/pipegate/internal/cfgfile"
	"github.com/pipegate/pipegate/tlsconf"
)

// ServerTLS is the block of files that terminate TLS:
//
//	tls:
//	  cert: /etc/pipegate/site.crt     # chain, leaf first (a combined PEM may be both)
//	  key: /etc/pipegate/site.key
//	  client_ca: /etc/pipegate/ca.crt  # optional: require client certificates
//	  ticket_keys: /etc/pipegate/tickets  # optional: shared by several instances
//
// or, to serve several certificates (as nginx's several ssl_certificate
// lines), certs instead of cert and key:
//
//	tls:
//	  certs:
//	    - {cert: /etc/pipegate/site-rsa.crt, key: /etc/pipegate/site-rsa.key}
//	    - {cert: /etc/pipegate/site-ecdsa.crt, key: /etc/pipegate/site-ecdsa.key}
//
// Each client gets the first certificate it supports, ECDSA before RSA
// whatever the order written (see tlsconf.ServerFiles).
type ServerTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Certs is a pointer so that ServerTLS stays comparable.
	Certs      *[]CertKey `yaml:"certs"`
	ClientCA   string     `yaml:"client_ca"`
	TicketKeys string     `yaml:"ticket_keys"`
	// Curves is a pointer so that ServerTLS stays comparable.
	Curves *[]string `yaml:"curves"`
}

// CertKey is one item of a certs: list.
type CertKey struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// maxCerts bounds a certs: list; nginx's users serve two or three.
const maxCerts = 8

// Files checks the block written at field ("tls") and returns its files,
// paths taken from the config file's folder: cert and key (or certs) are
// required, and every file named must be readable; the pairs of a certs:
// list are loaded, each key checked against its certificate. Errors name
// the key at fault ("tls.key: missing (tls.cert is set)",
// "tls.certs[1].key: ... private key does not match public key").
func (t *ServerTLS) Files(d *Doc, field string) (tlsconf.ServerFiles, error) {
	f := tlsconf.ServerFiles{Cert: d.Path(t.Cert), Key: d.Path(t.Key), ClientCA: d.Path(t.ClientCA), TicketKeys: d.Path(t.TicketKeys)}
	var errs Errors
	switch {
	case t.Certs != nil:
		f, errs = t.certsFiles(d, field, f)
	case t.Cert == "" && t.Key == "":
		errs.Add(d.Errorf(field+".cert", "missing (TLS needs a certificate and its key)"))
	case t.Cert == "":
		errs.Add(d.Errorf(field+".cert", "missing (a key without its certificate)"))
	case t.Key == "":
		errs.Add(d.Errorf(field+".key", "missing (a certificate without its key)"))
	}
	if t.Certs == nil {
		errs.Add(readable(d, field, "cert", f.Cert))
		errs.Add(readable(d, field, "key", f.Key))
	}
	errs.Add(readable(d, field, "client_ca", f.ClientCA))
	errs.Add(readable(d, field, "ticket_keys", f.TicketKeys))
	if t.Curves != nil {
		var err error
		f.Curves, err = curves(d, field+".curves", *t.Curves)
		errs.Add(err)
	}
	return f, errs.Err()
}

// curves checks a curves: list (tlsconf.ParseCurve) and joins it for
// tlsconf.ServerFiles.Curves.
func curves(d *Doc, field string, names []string) (string, error) {
	if len(names) == 0 {
		return "", d.Errorf(field, "empty list (leave curves out for Go's defaults)")
	}
	var errs Errors
	for i, n := range names {
		if _, err := tlsconf.ParseCurve(n); err != nil {
			errs.Add(d.Error(fmt.Sprintf("%s[%d]", field, i), err))
		}
	}
	return strings.Join(names, ","), errs.Err()
}

// certsFiles checks a certs: list and returns f with its pairs, the first
// as f's Cert and Key.
func (t *ServerTLS) certsFiles(d *Doc, field string, f tlsconf.ServerFiles) (tlsconf.ServerFiles, Errors) {
	var errs Errors
	certs := *t.Certs
	switch {
	case t.Cert != "" || t.Key != "":
		key := "cert"
		if t.Cert == "" {
			key = "key"
		}
		errs.Add(d.Errorf(field+"."+key, "give cert and key, or certs, not both (list every certificate under certs)"))
		return f, errs
	case len(certs) == 0:
		errs.Add(d.Errorf(field+".certs", "empty list (want one {cert: FILE, key: FILE} per certificate)"))
		return f, errs
	case len(certs) > maxCerts:
		errs.Add(d.Errorf(field+".certs", "%d certificates: want at most %d", len(certs), maxCerts))
		return f, errs
	}
	var pairs []tlsconf.KeyPair
	for i, c := range certs {
		at := fmt.Sprintf("%s.certs[%d]", field, i)
		p := tlsconf.KeyPair{Cert: d.Path(c.Cert), Key: d.Path(c.Key)}
		pairs = append(pairs, p)
		ok := true
		for _, k := range []struct{ key, given, path string }{{"cert", c.Cert, p.Cert}, {"key", c.Key, p.Key}} {
			if k.given == "" {
				errs.Add(d.Errorf(at+"."+k.key, "missing (each item of certs needs cert and key)"))
				ok = false
			} else if err := readable(d, at, k.key, k.path); err != nil {
				errs.Add(err)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if _, err := p.Load(); err != nil {
			which := "cert"
			if pe, isPair := errors.AsType[*tlsconf.PairError](err); isPair {
				which = pe.Which
			}
			errs.Add(d.Error(at+"."+which, err))
		}
	}
	f.Cert, f.Key = pairs[0].Cert, pairs[0].Key
	return f.WithPairs(pairs[1:]...), errs
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
	if err := cfgfile.Readable(path); err != nil {
		return d.Error(block+"."+key, err)
	}
	return nil
}

package tlsconf

import (
	"crypto/tls"
	"fmt"
)

// ClientFiles names the files of a client-side TLS configuration.
type ClientFiles struct {
	CA         string // PEM CA certificates to verify the server; "" means the system roots
	Cert, Key  string // optional client certificate and key (both or neither)
	ServerName string // name to verify the server certificate against; "" means the dialled host
	// InsecureSkipVerify turns verification off. Tests and demos only.
	InsecureSkipVerify bool
}

// LoadClient returns a client configuration that verifies the server
// (against f.CA, else the system roots) unless f.InsecureSkipVerify is set.
// When f.ServerName is empty, the caller must set ServerName (tls.Dial
// does so from the address it dials). It resumes TLS sessions (a session
// cache of its own, see Resuming).
func LoadClient(f ClientFiles) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if f.CA != "" {
		pool, err := loadPool(f.CA, "tls CA")
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := loadKeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.Cert != "":
		return nil, fmt.Errorf("tls client key: no file given (cert is %s)", f.Cert)
	case f.Key != "":
		return nil, fmt.Errorf("tls client cert: no file given (key is %s)", f.Key)
	}
	return cfg, nil
}

// Resuming returns cfg with a client session cache, so that the
// connections made with it and its clones resume TLS sessions with the
// servers that issued them (a ticket per server name), as nginx's
// proxy_ssl_session_reuse and HAProxy's servers do by default: a resumed
// handshake signs nothing on either side. cfg itself is returned when it
// has a cache (or is nil); else a clone with a new one, which a config
// loaded afresh (a reload, other CAs) does not share.
func Resuming(cfg *tls.Config) *tls.Config {
	if cfg == nil || cfg.ClientSessionCache != nil {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	return cfg
}

package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pipegate/pipegate/internal/cfgfile"
)

// ServerFiles names the files of a server-side TLS configuration.
//
// Several certificates (an ECDSA and an RSA one, say) are served together
// when more pairs are added with WithPairs: each client gets the first one
// it supports, ECDSA before Ed25519 before RSA whatever the order given,
// so that clients able to verify ECDSA get the certificate that is cheap to
// sign with, and RSA-only clients still get RSA.
type ServerFiles struct {
	Cert string // PEM certificate chain, leaf first (required)
	Key  string // PEM private key of the leaf (required)
	// ClientCA, when set, is a PEM file of CA certificates; clients must then
	// present a certificate that verifies against it.
	ClientCA string
	// TicketKeys, when set, is a file of session ticket keys shared by
	// several instances (see the package documentation for its format).
	TicketKeys string
	// Curves, when set, limits the key exchange groups to these names
	// (ParseCurve), joined by commas: "X25519,P-256" leaves out the
	// post-quantum hybrids, as a server with OpenSSL 3.0 does. crypto/tls
	// keeps its own order among those allowed (hybrids first, then
	// X25519, then the NIST curves), preferring one the client sent a key
	// share for. "": Go's defaults.
	Curves string

	// more holds the pairs added by WithPairs, NUL-separated: a string
	// rather than a slice keeps ServerFiles comparable (callers key maps
	// by it), and file names cannot hold NUL.
	more string
}

// WithPairs returns f serving the certificates of pairs as well as its
// Cert and Key.
func (f ServerFiles) WithPairs(pairs ...KeyPair) ServerFiles {
	var b strings.Builder
	b.WriteString(f.more)
	for _, p := range pairs {
		b.WriteString(p.Cert + "\x00" + p.Key + "\x00")
	}
	f.more = b.String()
	return f
}

// Pairs returns every certificate of f: Cert and Key first, then the pairs
// added by WithPairs, in the order given.
func (f ServerFiles) Pairs() []KeyPair {
	pairs := []KeyPair{{Cert: f.Cert, Key: f.Key}}
	fields := strings.Split(f.more, "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		pairs = append(pairs, KeyPair{Cert: fields[i], Key: fields[i+1]})
	}
	return pairs
}

// Server is a reloadable server-side TLS configuration. Its methods are
// safe for concurrent use.
type Server struct {
	files  ServerFiles
	static bool        // made by StaticServer: Reload does nothing
	config *tls.Config // stable; hands out state.config per handshake

	reload sync.Mutex // serialises Reload
	state  atomic.Pointer[serverState]
}

// serverState is one consistent loading of the files.
type serverState struct {
	config *tls.Config
	served []CertInfo // as config.Certificates
}

// LoadServer reads the files and returns a Server. Errors name the file
// and what is wrong with it.
func LoadServer(f ServerFiles) (*Server, error) {
	s := &Server{files: f}
	st, err := loadServerState(f)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	s.config = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: s.configForClient}
	return s, nil
}

// StaticServer returns a Server that always serves cert (from SelfSigned,
// say) and whose Reload does nothing: daemons can take a *Server whether
// the certificate comes from files or not.
func StaticServer(cert tls.Certificate) *Server {
	s := &Server{static: true}
	st := &serverState{config: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}}
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		st.served = []CertInfo{describe("", leaf)}
	}
	s.state.Store(st)
	s.config = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: s.configForClient}
	return s
}

// Config returns the configuration to give to tls.Server or
// tls.NewListener. It is the same value for the life of s; each new
// handshake uses the certificate, client CAs and ticket keys of the latest
// successful load (through GetConfigForClient). Treat it as read-only:
// handshakes take their settings from the per-load configuration, so
// fields set on a clone (NextProtos, say) would be ignored.
func (s *Server) Config() *tls.Config { return s.config }

// Reload re-reads all files. On error the previous state stays in use and
// the error names the file at fault. Existing connections are not affected.
func (s *Server) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	commit, err := s.Prepare()
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare re-reads all files as Reload does, but serves them only once
// commit is called: a daemon that reloads several things at once commits
// none until all of them loaded. On error nothing changes. Unlike Reload,
// it leaves keeping reloads in order to the caller.
func (s *Server) Prepare() (commit func(), err error) {
	if s.static {
		return func() {}, nil
	}
	st, err := loadServerState(s.files)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return func() { s.state.Store(st) }, nil
}

// Files returns the file names s was loaded from.
func (s *Server) Files() ServerFiles { return s.files }

// Certificate returns the certificate currently served, the first of
// several (see Certificates).
func (s *Server) Certificate() *tls.Certificate {
	return &s.state.Load().config.Certificates[0]
}

// Certificates returns the certificates currently served, in the order
// crypto/tls tries them: ECDSA, then Ed25519, then RSA.
func (s *Server) Certificates() []tls.Certificate {
	return slices.Clone(s.state.Load().config.Certificates)
}

// Served describes the certificates currently served, in the order of
// Certificates, for a daemon to log at start and after a reload:
//
//	for _, c := range srv.Served() {
//		log.Info("tls certificate", "cert", c.String(), "file", c.File)
//	}
//
// A certificate that is expired or not yet valid is served anyway (as
// nginx does): log it at warning level (CertInfo.Valid).
func (s *Server) Served() []CertInfo {
	return slices.Clone(s.state.Load().served)
}

// String lists the certificates served: "ECDSA P-256 CN=… (…; until …),
// RSA 2048 CN=… (…)".
func (s *Server) String() string {
	var parts []string
	for _, c := range s.state.Load().served {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

func (s *Server) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return s.state.Load().config, nil
}

func loadServerState(f ServerFiles) (*serverState, error) {
	pairs := f.Pairs()
	var loaded []servedCert
	for i, p := range pairs {
		if p.Cert == "" && p.Key == "" && len(pairs) == 1 {
			return nil, fmt.Errorf("tls cert: no file given")
		}
		if p.Cert == "" {
			return nil, fmt.Errorf("tls cert: no file given (key is %s)", p.Key)
		}
		if p.Key == "" {
			return nil, fmt.Errorf("tls key: no file given (cert is %s)", p.Cert)
		}
		cert, err := p.Load()
		if err != nil {
			if len(pairs) > 1 {
				return nil, fmt.Errorf("certificate %d of %d: %w", i+1, len(pairs), err)
			}
			return nil, err
		}
		loaded = append(loaded, servedCert{cert: cert, info: describe(p.Cert, cert.Leaf)})
	}
	orderCerts(loaded)
	st := &serverState{}
	var certs []tls.Certificate
	for _, c := range loaded {
		certs = append(certs, c.cert)
		st.served = append(st.served, c.info)
	}
	curves, err := parseCurves(f.Curves)
	if err != nil {
		return nil, &SettingError{Setting: "curves", Err: err}
	}
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     certs,
		CurvePreferences: curves,
	}
	if len(certs) > 1 {
		cfg.GetCertificate = pickCertificate(certs)
	}
	if f.ClientCA != "" {
		pool, err := loadPool(f.ClientCA, "client CA")
		if err != nil {
			return nil, &SettingError{Setting: "client_ca", Err: err}
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if f.TicketKeys != "" {
		keys, err := LoadTicketKeys(f.TicketKeys)
		if err != nil {
			return nil, &SettingError{Setting: "ticket_keys", Err: err}
		}
		cfg.SetSessionTicketKeys(keys)
	}
	// Without SetSessionTicketKeys, crypto/tls uses the keys of the outer
	// Config (returned by Server.Config), which survive reloads.
	st.config = cfg
	return st, nil
}

// SettingError is an error of LoadServer, Reload or Prepare about a
// setting of ServerFiles other than the certificates and keys: Setting is
// "client_ca", "ticket_keys" or "curves", the config key daemons give it.
// The error itself names the file at fault.
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Setting names the config key an error of LoadServer, Reload or Prepare
// is about: SettingError's, else "cert" (a certificate or its key).
func Setting(err error) string {
	if se, ok := errors.AsType[*SettingError](err); ok {
		return se.Setting
	}
	return "cert"
}

// loadKeyPair reads a certificate and its key, naming the file at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, fmt.Errorf("tls cert: no file given")
	}
	if keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("tls key: no file given (cert is %s)", certFile)
	}
	certPEM, err := cfgfile.Read(certFile, cfgfile.Small)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls cert: %w", err)
	}
	keyPEM, err := cfgfile.Read(keyFile, cfgfile.Small)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls cert %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// loadPool reads a PEM file of CA certificates.
func loadPool(file, what string) (*x509.CertPool, error) {
	data, err := cfgfile.Read(file, cfgfile.Small)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s %s: no PEM certificate found", what, file)
	}
	return pool, nil
}

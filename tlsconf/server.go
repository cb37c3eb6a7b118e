package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// ServerFiles names the files of a server-side TLS configuration.
type ServerFiles struct {
	Cert string // PEM certificate chain, leaf first (required)
	Key  string // PEM private key of the leaf (required)
	// ClientCA, when set, is a PEM file of CA certificates; clients must then
	// present a certificate that verifies against it.
	ClientCA string
	// TicketKeys, when set, is a file of session ticket keys shared by
	// several instances (see the package documentation for its format).
	TicketKeys string
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
	s.state.Store(&serverState{config: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}})
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
	if s.static {
		return nil
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	st, err := loadServerState(s.files)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	s.state.Store(st)
	return nil
}

// Files returns the file names s was loaded from.
func (s *Server) Files() ServerFiles { return s.files }

// Certificate returns the certificate currently served.
func (s *Server) Certificate() *tls.Certificate {
	return &s.state.Load().config.Certificates[0]
}

func (s *Server) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return s.state.Load().config, nil
}

func loadServerState(f ServerFiles) (*serverState, error) {
	cert, err := loadKeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if f.ClientCA != "" {
		pool, err := loadPool(f.ClientCA, "client CA")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if f.TicketKeys != "" {
		keys, err := LoadTicketKeys(f.TicketKeys)
		if err != nil {
			return nil, err
		}
		cfg.SetSessionTicketKeys(keys)
	}
	// Without SetSessionTicketKeys, crypto/tls uses the keys of the outer
	// Config (returned by Server.Config), which survive reloads.
	return &serverState{config: cfg}, nil
}

// loadKeyPair reads a certificate and its key, naming the file at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, fmt.Errorf("tls cert: no file given")
	}
	if keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("tls key: no file given (cert is %s)", certFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
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
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s %s: no PEM certificate found", what, file)
	}
	return pool, nil
}

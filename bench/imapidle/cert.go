package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pipegate/pipegate/tlsconf"
)

// runCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost: server.crt and server.key for pipegate, server.pem (both in
// one file) for HAProxy's "crt".
func runCert(args []string) int {
	fs := flag.NewFlagSet("cert", flag.ExitOnError)
	dir := fs.String("dir", ".", "folder to write server.crt, server.key and server.pem into")
	fs.Parse(args)
	if err := writeCert(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "imapidle cert:", err)
		return 1
	}
	return 0
}

func writeCert(dir string) error {
	cert, err := tlsconf.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	files := []struct {
		name string
		data []byte
	}{
		{"server.crt", certPEM},
		{"server.key", keyPEM},
		{"server.pem", append(append([]byte(nil), certPEM...), keyPEM...)},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

package configtest

import (
	"crypto/tls"
	"fmt"
)

// TLSSummary sums c up for comparison, as reflect.DeepEqual cannot
// compare a *tls.Config (its certificate pools hold functions): its
// server name, certificates, whether it has roots and client CAs, its
// client auth, curves, minimum version and callbacks.
func TLSSummary(c *tls.Config) string {
	if c == nil {
		return "none"
	}
	var leaves [][]byte
	for _, cert := range c.Certificates {
		leaves = append(leaves, cert.Certificate[0])
	}
	return fmt.Sprintf("server_name=%q certs=%x roots=%v client_cas=%v client_auth=%v curves=%v min=%x get_cert=%v get_config=%v",
		c.ServerName, leaves, c.RootCAs != nil, c.ClientCAs != nil, c.ClientAuth, c.CurvePreferences, c.MinVersion,
		c.GetCertificate != nil, c.GetConfigForClient != nil)
}

package maild

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/pipegate/pipegate/admin"
	"github.com/pipegate/pipegate/affinity"
)

// adminHostOnly guards the admin address's APIs that read accounts or act
// (/sessions, /affinity) against DNS rebinding: a web page whose name an
// attacker points at the admin address is the same origin to the browser,
// so http.CrossOriginProtection lets it through, but its requests carry
// the attacker's name as Host. Only a Host that is an IP address or
// "localhost" (with any port), or none, is answered; others get 403.
// /metrics and /healthz are not guarded: scrapers may name the host.
func adminHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminHost(r.Host) {
			admin.WriteJSON(w, http.StatusForbidden, affinity.APIError{
				Error: fmt.Sprintf("Host %q is not an IP address or localhost: ask the admin API by address (a guard against DNS rebinding)", r.Host),
				Field: "host",
			})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// adminHost reports whether host (a Host header, port or not) names the
// admin address by IP address or as localhost.
func adminHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

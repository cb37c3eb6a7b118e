package sieve

import "github.com/pipegate/pipegate/route"

// init registers the backend URL schemes of ManageSieve (as database/sql
// drivers register themselves): sieve://host[:4190] (plain) and
// sieve+starttls://host[:4190]. The client's address goes by XCLIENT
// (Dovecot takes it from login_trusted_networks), by a PROXY header
// (client_addr=proxy) or not at all (client_addr=none). ManageSieve has no
// implicit-TLS port.
func init() {
	modes := []route.ClientAddrMode{route.ClientAddrXCLIENT}
	route.RegisterScheme("sieve", route.Scheme{Protocol: "sieve", TLS: route.TLSNone, Port: "4190",
		ClientAddr: route.ClientAddrXCLIENT, ClientAddrModes: modes})
	route.RegisterScheme("sieve+starttls", route.Scheme{Protocol: "sieve", TLS: route.TLSStartTLS, Port: "4190",
		ClientAddr: route.ClientAddrXCLIENT, ClientAddrModes: modes})
}

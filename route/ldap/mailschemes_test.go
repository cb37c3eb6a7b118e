package ldap

import "github.com/pipegate/pipegate/route"

// The schemes of issue 12's protocols, as packages pop3, sieve and
// submission register them when linked in; the tests here register them
// themselves so that route/ldap does not import the protocols.
func init() {
	xclient := []route.ClientAddrMode{route.ClientAddrXCLIENT}
	for name, sc := range map[string]route.Scheme{
		"pop3":                {Protocol: "pop3", TLS: route.TLSNone, Port: "110"},
		"pop3+starttls":       {Protocol: "pop3", TLS: route.TLSStartTLS, Port: "110"},
		"pop3s":               {Protocol: "pop3", TLS: route.TLSImplicit, Port: "995"},
		"sieve":               {Protocol: "sieve", TLS: route.TLSNone, Port: "4190"},
		"sieve+starttls":      {Protocol: "sieve", TLS: route.TLSStartTLS, Port: "4190"},
		"submission":          {Protocol: "submission", TLS: route.TLSNone, Port: "587"},
		"submission+starttls": {Protocol: "submission", TLS: route.TLSStartTLS, Port: "587"},
		"submissions":         {Protocol: "submission", TLS: route.TLSImplicit, Port: "465"},
	} {
		sc.ClientAddr, sc.ClientAddrModes = route.ClientAddrXCLIENT, xclient
		route.RegisterScheme(name, sc)
	}
}

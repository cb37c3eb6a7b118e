package ldap_test

import (
	"context"
	"log"
	"os"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/ldap"
)

// A directory whose entries carry the mail host in mailHost (misc.schema);
// every backend speaks IMAP over TLS on port 993.
func ExampleNew() {
	bindPassword := os.Getenv("LDAP_BIND_PASSWORD") // or read from a file
	src, err := ldap.New(ldap.Config{
		URLs:         []string{"ldaps://ldap1.example.org", "ldaps://ldap2.example.org"},
		BindDN:       "cn=pipegate,ou=services,dc=example,dc=org",
		BindPassword: bindPassword,
		BaseDN:       "ou=people,dc=example,dc=org",
		Filter:       "(&(objectClass=inetLocalMailRecipient)(mail=%u))",
		HostAttr:     "mailHost",
		TLSMode:      "tls",
		Port:         993,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@example.org"})
	log.Print(rt, err)
}

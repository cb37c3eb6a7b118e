package file_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
)

func Example() {
	src, err := file.Parse("routes.yaml", []byte(`
routes:
  - account: alice@a.test
    backend: imap://127.0.0.1:14301
  - domain: "*@b.test"
    backends: [imaps://127.0.0.1:19932, imaps://127.0.0.1:19933]
    login: "%n"
default: imap+starttls://127.0.0.1:14301
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, account := range []string{"Alice@a.test", "carol@b.test", "dave@c.test"} {
		rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: account})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s → %v login=%q\n", account, rt.Backends, rt.Login)
	}

	_, err = file.Parse("routes.yaml", []byte("routes:\n  - account: bob@a.test\n    backend: gopher://127.0.0.1:110\n"))
	fmt.Println(err) // the schemes listed are those registered: IMAP's and the linked protocols'
	// Output:
	// Alice@a.test → [imap://127.0.0.1:14301] login=""
	// carol@b.test → [imaps://127.0.0.1:19932 imaps://127.0.0.1:19933] login="carol"
	// dave@c.test → [imap+starttls://127.0.0.1:14301] login=""
	// routes.yaml:3: routes[0].backend: backend "gopher://127.0.0.1:110": unknown scheme "gopher" (want one of imap, imap+starttls, imaps, pop3, pop3+starttls, pop3s, sieve, sieve+starttls, submission, submission+starttls, submissions)
}

// A match: rule tests the account with a POSIX extended regular
// expression (as Perdition's popmap.re); its submatches $1 to $9 fill
// the login and the backend's host.
func Example_match() {
	src, err := file.Parse("routes.yaml", []byte(`
routes:
  - account: alice@a.test                  # account and domain rules come first
    backend: imap://127.0.0.1:14301
  - match: '^([^@]*)@([^.]*)\.test$'        # then match rules, in file order
    backend: imaps://$2.mail.example:993
    login: $1_$2
  - match: '^[a-k]'
    backend: imap://127.0.0.1:14302
default: imap://127.0.0.1:14303
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, account := range []string{"alice@a.test", "bob@b.test", "carl", "zoe"} {
		rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: account})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s → %v login=%q\n", account, rt.Backends, rt.Login)
	}

	_, err = file.Parse("routes.yaml", []byte("routes:\n  - match: '^a'\n    domain: a.test\n    backend: imap://h\n"))
	fmt.Println(err)
	// Output:
	// alice@a.test → [imap://127.0.0.1:14301] login=""
	// bob@b.test → [imaps://b.mail.example:993] login="bob_b"
	// carl → [imap://127.0.0.1:14302] login=""
	// zoe → [imap://127.0.0.1:14303] login=""
	// routes.yaml:3: routes[0].domain: not with match: (a match rule tests the account with its regexp alone)
}

// A local: rule routes by the address the client connected to
// (Request.LocalAddr): a hosting operator gives each tenant its own IP,
// and the same name in two tenants reaches each tenant's backend.
func Example_local() {
	src, err := file.Parse("routes.yaml", []byte(`
routes:
  - local: 192.0.2.10                      # every account of tenant A
    backend: imap://10.1.0.1:143
  - local: [192.0.2.20, "2001:db8::20"]    # tenant B
    backend: imap://10.2.0.1:143
  - account: info                          # one of tenant B's accounts
    local: 192.0.2.20
    backend: imap://10.2.0.2:143
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, to := range []string{"192.0.2.10:143", "192.0.2.20:143", "[::ffff:192.0.2.20]:993", "[2001:db8::20]:143"} {
		for _, account := range []string{"info", "sales"} {
			rt, err := src.Lookup(context.Background(), route.Request{Protocol: "imap", Account: account,
				LocalAddr: netip.MustParseAddrPort(to)})
			if err != nil {
				fmt.Println(err)
				continue
			}
			fmt.Printf("%s to %s → %v\n", account, to, rt.Backends)
		}
	}
	// Output:
	// info to 192.0.2.10:143 → [imap://10.1.0.1:143]
	// sales to 192.0.2.10:143 → [imap://10.1.0.1:143]
	// info to 192.0.2.20:143 → [imap://10.2.0.2:143]
	// sales to 192.0.2.20:143 → [imap://10.2.0.1:143]
	// info to [::ffff:192.0.2.20]:993 → [imap://10.2.0.2:143]
	// sales to [::ffff:192.0.2.20]:993 → [imap://10.2.0.1:143]
	// info to [2001:db8::20]:143 → [imap://10.2.0.1:143]
	// sales to [2001:db8::20]:143 → [imap://10.2.0.1:143]
}

package file_test

import (
	"context"
	"fmt"

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

package sql_test

import (
	"context"
	"log"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/sql"
)

// A table routes(account, host, port, tls, login) in PostgreSQL.
func ExampleNew() {
	ctx := context.Background()
	src, err := sql.New(ctx, sql.Config{
		URL:   "postgres://pipegate@127.0.0.1:5432/mail?sslmode=disable",
		Query: "SELECT host, port, tls, login FROM routes WHERE account = lower($1)",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
	log.Print(rt, err)
}

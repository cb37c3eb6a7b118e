// Package file is pipegate's embedded route source: a YAML file that maps
// accounts, domains, client networks and the addresses clients connected
// to to backends, reloaded on demand (the daemon calls Reload on SIGHUP).
//
//	src, err := file.Open("/etc/pipegate/routes.yaml")
//	if err != nil {
//		log.Fatal(err) // names the file, the line, the field and the problem
//	}
//	rt, err := src.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
//	// rt.Backends[0].Addr == "127.0.0.1:14301"
//	...
//	if err := src.Reload(); err != nil {
//		log.Print(err) // the old table stays in force
//	}
//
// The file:
//
//	routes:
//	  - account: alice@a.test            # exact account, case-insensitive
//	    backend: imap://127.0.0.1:14301
//	  - account: bob@a.test
//	    backends: [imaps://10.0.0.1:993, imaps://10.0.0.2:993]   # failover, in order
//	    login: bob                       # login name sent to the backend (%u, %n, %d expand)
//	  - domain: b.test                   # or "*@b.test"
//	    backend: imaps://127.0.0.1:19932
//	  - domain: b.test
//	    network: 10.0.0.0/8              # clients from this network (a list is allowed)
//	    backend: imap://127.0.0.1:14302
//	  - match: '^([^@]*)@([^.]*)\.test$'  # a POSIX extended regexp (Perdition's popmap.re)
//	    backend: imaps://$2.mail.test    # $0 to $9 (or ${N}): submatches, in the host
//	    login: $1_$2                     # and in the login
//	  - network: 192.0.2.0/24            # every account from this network
//	    backend: imap://127.0.0.1:14309
//	  - local: 10.0.0.1                  # every account of connections to this address
//	    backend: imap://10.1.0.1:143     # (a tenant's own IP; a list, CIDRs allowed)
//	  - account: info
//	    local: 10.0.0.1                  # any rule may have local: (Request.LocalAddr)
//	    backend: imap://10.1.0.2:143
//	default: imap+starttls://127.0.0.1:14301   # or a list
//
// The most specific rule wins, whatever its place in the file:
//
//  1. account, local and network
//  2. account and local
//  3. account and network
//  4. account
//  5. domain, local and network
//  6. domain and local
//  7. domain and network
//  8. domain
//  9. match and local: the first whose regexp matches the account, the
//     longest local prefix first, then in file order
//  10. match: the first in file order whose regexp matches the account
//  11. network and local
//  12. local alone
//  13. network alone
//  14. default
//
// A rule with local: applies only to connections whose local address
// (the one the client connected to, or a trusted proxy's PROXY header
// named) is in it; when the request has none, it never applies. IPv4-mapped
// addresses, on either side, are taken as IPv4.
//
// A match rule's regexp is compiled once, at load time, with POSIX
// leftmost-longest semantics, and is tested anywhere in the account as
// the request has it (anchor it with ^ and $). A submatch is let into a
// host only if it is made of host name characters; a host or login that
// comes out bad is a lookup error naming the rule's line.
//
// Among rules of one kind that all match, the longest local prefix wins,
// then the longest network prefix (match rules: the longest local prefix,
// then file order). A rule listing several networks or local addresses
// is one rule for each (network, local) pair, 65536 at most. Two rules with the same
// account (or domain), network and local are an error, as are two match
// rules with the same regexp and local. No rule and no default: ErrNotFound, and a chain asks its next
// source.
package file

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pipegate/pipegate/internal/cfgfile"
	"github.com/pipegate/pipegate/route"
)

// Source is a routes file loaded in memory. Its methods are safe for
// concurrent use; Lookup never blocks on Reload.
type Source struct {
	path  string
	mu    sync.Mutex // serialises Reload so an older read never replaces a newer one
	table atomic.Pointer[table]
}

// Open reads and checks the routes file at path.
func Open(path string) (*Source, error) {
	s := &Source{path: path}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Parse makes a Source from YAML held in memory; name is used in error
// messages. Such a Source has no file to Reload from.
func Parse(name string, data []byte) (*Source, error) {
	t, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	s := &Source{}
	s.table.Store(t)
	return s, nil
}

// Path is the file the Source reads ("" for one made by Parse).
func (s *Source) Path() string { return s.path }

// Rules is the number of rules in force, the default counting as one.
func (s *Source) Rules() int { return s.table.Load().rules }

// Pools lists the pool:NAME backends the file's rules name, in file
// order, with their lines.
func (s *Source) Pools() []PoolRef { return s.table.Load().pools }

// Reload reads the file again and swaps the new table in at once. On any
// error the table in force stays and the error says what is wrong.
func (s *Source) Reload() error {
	if s.path == "" {
		return fmt.Errorf("route/file: reload: source has no file (made by Parse)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := cfgfile.Read(s.path, cfgfile.Table)
	if err != nil {
		return fmt.Errorf("route/file: %w", err)
	}
	t, err := parse(s.path, data)
	if err != nil {
		return err
	}
	s.table.Store(t)
	return nil
}

// Lookup finds the most specific rule for req (see the package comment).
// The returned Route is the caller's to keep and change.
func (s *Source) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	if err := ctx.Err(); err != nil {
		return route.Route{}, err
	}
	return s.table.Load().lookup(req)
}

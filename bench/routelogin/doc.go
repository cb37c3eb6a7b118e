// Package routelogin measures whole IMAP logins through pipegate's proxy
// with the route taken from each routing source: file, http (auth_http),
// redis, ldap and sql, each built by route/config from YAML as an
// operator writes it, with the route cache off ("cold": one round trip to
// the source per login) and on and primed ("warm": none).
//
// A login is: connect to an imap.Server, LOGIN, LOGOUT; the backend is
// go-imap's in-memory server on loopback. Redis, OpenLDAP slapd and
// PostgreSQL are real servers from Debian's packages (redis-server, slapd
// and ldap-utils, postgresql), started once for the package by
// internal/realserver; a source whose server is not installed is skipped
// (a failure with PIPEGATE_REQUIRE_REAL=1).
//
//	go test -run '^$' -bench . -benchtime 200x ./bench/routelogin/
//	BenchmarkLogin/redis/cold-2   200   1037264 ns/op   964.1 logins/s
//	BenchmarkLogin/redis/warm-2   200    555466 ns/op    1800 logins/s
//
// (2 shared cores, load ~6: a warm login is ~0.6 ms, of which the source
// adds nothing; a cold one adds the source's round trip, 0.2-0.5 ms.)
//
// TestLoginEachSource (run by plain `go test`) logs in once per source and
// checks the round trips: a cold login asks the http and redis sources
// exactly once, a warm login not at all (the ldap and sql sources are
// frozen with SIGSTOP for the warm login, which must still succeed).
//
// The package holds no code besides its tests.
package routelogin

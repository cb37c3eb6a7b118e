package affinity

import "github.com/pipegate/pipegate/internal/ascii"

// UserKey is the name a user is kept under: ASCII letters lower-cased.
// Dovecot (auth_username_format %Lu, its default) and Cyrus
// (username_tolower) log "Alice@Example.com" and "alice@example.com" into
// one mailbox, so both must be on one member; a phone that capitalises
// the first letter of the name field sends the first. Two users of a
// backend that tells case apart share a member, which is harmless.
// Assign, Lookup and Move take any spelling; leases, kicks and the keys
// in Redis carry this one.
func UserKey(user string) string { return ascii.Lower(user) }

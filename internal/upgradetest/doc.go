// Package upgradetest holds what the tests of a binary upgrade's receiving
// side (forward.Daemon.AdoptConn, maild.Daemon.TakeOver) need in common:
// a connected upgrade channel, a real detached pipe's State, messages
// sent with sockets attached, and the count of open descriptors.
//
//	oldc, newc := upgradetest.Channel(f)
//	state := upgradetest.DetachedState(f)
//	kept := upgradetest.SendSockets(t, ctx, oldc, "session", meta, 2)
//	// newc receives the message; kept are the sockets' other ends.
package upgradetest

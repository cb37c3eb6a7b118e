// Package core holds the types the pipe core shares between its public
// package and its event loops: Side, Reason, Options, Result, Setup and
// Fallback. Package pipe exposes them as type aliases (pipe.Result is
// core.Result) and package evloop uses them directly, so there is one
// definition of each and nothing to keep equal by hand.
//
//	opts := core.Options{IdleTimeout: time.Hour}
//	done := func(r core.Result) {
//		log.Printf("%d bytes a->b, %s ended first: %s", r.BytesAToB, r.FirstEnd, r.Reason)
//	}
//
// It imports only the standard library and nothing of ours.
package core

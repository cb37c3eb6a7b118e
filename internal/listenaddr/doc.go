// Package listenaddr checks the addresses pipegate listens on, as config
// files and flags give them, and tells which two the kernel would not let
// it listen on at once, so that a config check finds what would otherwise
// fail at start with "address already in use".
//
//	if err := listenaddr.Check(fc.MetricsAddr); err != nil {
//		errs.Add(doc.Error("metrics_addr", err)) // "FILE:7: metrics_addr: \"127.0.0.1:99999\": port \"99999\" is not a number from 0 to 65535"
//	}
//	for i, a := range addrs {
//		for j, b := range addrs[:i] {
//			if listenaddr.Conflict(b, a) {
//				field := fmt.Sprintf("listen[%d].addr", j)
//				errs.Add(doc.Error(fmt.Sprintf("listen[%d].addr", i), listenaddr.ConflictError(a, field, b)))
//				break
//			}
//		}
//	}
//	// FILE:3: listen[1].addr: ":11143": listen[0].addr ("0.0.0.0:11143") listens there too
package listenaddr

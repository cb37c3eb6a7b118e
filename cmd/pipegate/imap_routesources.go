package main

import (
	"fmt"

	"pipegate/route"
)

// openIMAPRouteSources builds the router of a route_sources: list.
// TODO(imap-e2e): wire route/config.Build once it exists.
func openIMAPRouteSources(s *imapSettings) (route.Router, error) {
	return nil, &imapConfigError{File: s.File, Line: s.RouteSources.Line, Field: "route_sources",
		Err: fmt.Errorf("not supported by this build yet (use routes_file)")}
}

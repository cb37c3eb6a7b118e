package main

import (
	"context"
	"fmt"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/config"
)

// openIMAPRouteSources builds the router of the route_sources list.
// Building connects to nothing: a source that is down shows at the first
// lookups.
func openIMAPRouteSources(s *imapSettings) (router route.Router, reload, closeAll func() error, err error) {
	router, reload, closeAll, err = config.Build(context.Background(), s.BaseDir, s.RouteSources, s.RouteCache)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", s.File, err)
	}
	return router, reload, closeAll, nil
}

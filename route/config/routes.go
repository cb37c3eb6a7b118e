package config

import (
	"context"
	"errors"

	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
)

// Spec is the routing part of a daemon's config file.
type Spec struct {
	Dir        string         // the config file's folder: relative paths start here
	RoutesFile string         // routes_file: asked first; "" for none
	Sources    []SourceConfig // route_sources, asked in order after routes_file
	Cache      CacheConfig    // route_cache: the remote sources' default cache
	// ServerName is the name to verify a backend's certificate against
	// when its route names none (backend_tls.server_name); "" for the
	// backend's host.
	ServerName string
}

// Routes is the Router a Spec describes. Reload re-reads the routes and
// password files and empties the caches (SIGHUP); Close releases the
// sources' connections.
type Routes struct {
	router        route.Router
	file          *file.Source // routes_file; nil without
	reloadSources func() error // nil without route_sources
	closeSources  func() error
}

// Open builds the Routes of s. Like Build it connects to nothing, so it is
// what a config check runs too. Errors are *FieldError.
func Open(ctx context.Context, s Spec) (*Routes, error) {
	r := &Routes{}
	var routers []route.Router
	if s.RoutesFile != "" {
		f, err := file.Open((&builder{baseDir: s.Dir}).path(s.RoutesFile))
		if err != nil {
			return nil, &FieldError{Index: -1, Err: err}
		}
		r.file = f
		routers = append(routers, f)
	}
	if len(s.Sources) > 0 {
		router, reload, closeAll, err := Build(ctx, s.Dir, s.Sources, s.Cache)
		if err != nil {
			return nil, err
		}
		r.reloadSources, r.closeSources = reload, closeAll
		routers = append(routers, router)
	}
	switch len(routers) {
	case 0:
		return nil, &FieldError{Index: -1, Err: errors.New("missing: give routes_file or route_sources")}
	case 1:
		r.router = routers[0]
	default:
		r.router = route.Chain(routers...)
	}
	r.router = withServerName(r.router, s.ServerName)
	return r, nil
}

// Lookup asks routes_file, then route_sources.
func (r *Routes) Lookup(ctx context.Context, req route.Request) (route.Route, error) {
	return r.router.Lookup(ctx, req)
}

// Reload re-reads routes_file, the file sources (each keeps its
// previous table on error) and the sources' password files (each keeps
// its password on error), and empties the caches. Errors are
// *FieldError.
func (r *Routes) Reload() error {
	var errs []error
	if r.file != nil {
		if err := r.file.Reload(); err != nil {
			errs = append(errs, &FieldError{Index: -1, Err: err})
		}
	}
	if r.reloadSources != nil {
		errs = append(errs, r.reloadSources())
	}
	return errors.Join(errs...)
}

// Rules is the number of rules of routes_file (0 without).
func (r *Routes) Rules() int {
	if r.file == nil {
		return 0
	}
	return r.file.Rules()
}

// Pools lists the pool:NAME backends routes_file names (none without
// it), and the file's path; route_sources are not looked into.
func (r *Routes) Pools() (path string, refs []file.PoolRef) {
	if r.file == nil {
		return "", nil
	}
	return r.file.Path(), r.file.Pools()
}

// Close releases the sources' connections.
func (r *Routes) Close() error {
	if r.closeSources == nil {
		return nil
	}
	return r.closeSources()
}

// withServerName gives serverName to the backends whose route names no
// server itself (whose server name is the host of their address).
func withServerName(next route.Router, serverName string) route.Router {
	if serverName == "" {
		return next
	}
	return route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
		rt, err := next.Lookup(ctx, req)
		if err != nil {
			return rt, err
		}
		backends := make([]route.Backend, len(rt.Backends))
		for i, b := range rt.Backends {
			backends[i] = b.WithDefaultServerName(serverName)
		}
		rt.Backends = backends
		return rt, nil
	})
}

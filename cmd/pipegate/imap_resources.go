package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/file"
	"github.com/pipegate/pipegate/tlsconf"
)

// imapResources are what a config names outside itself: certificates and
// routes. They can be reloaded (SIGHUP).
type imapResources struct {
	settings   *imapSettings
	serverTLS  *tlsconf.Server // nil without tls:
	backendTLS *tls.Config
	routes     *file.Source // the routes_file source alone, reloadable
	// with route_sources: re-read file sources and empty caches; close
	reloadSources, closeSources func() error
	router                      route.Router
	penalty                     limit.PenaltyStore // nil: in-process
	closePenalty                func() error       // releases the penalty store's Redis client
}

// openIMAPResources loads the certificates and the routes a checked config
// names. Errors name the config file, the field and the file at fault.
func openIMAPResources(s *imapSettings) (*imapResources, error) {
	r := &imapResources{settings: s}
	var errs []error
	if s.TLSCert != "" {
		srv, err := tlsconf.LoadServer(tlsconf.ServerFiles{Cert: s.TLSCert, Key: s.TLSKey, TicketKeys: s.TicketKeys})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: tls: %w", s.File, err))
		}
		r.serverTLS = srv
	}
	bt, err := loadIMAPBackendTLS(s)
	if err != nil {
		errs = append(errs, err)
	}
	r.backendTLS = bt
	if p := s.Penalty; p != nil && p.Redis != nil {
		store, closeStore, err := imapPenaltyStore(*p.Redis)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.File, err))
		}
		r.penalty, r.closePenalty = store, closeStore
	}
	router, err := r.openRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	r.router = imapServerNameRouter(router, s.BackendTLS.ServerName)
	if err := errors.Join(errs...); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func loadIMAPBackendTLS(s *imapSettings) (*tls.Config, error) {
	b := s.BackendTLS
	cfg, err := tlsconf.LoadClient(tlsconf.ClientFiles{
		CA: b.CA, Cert: b.Cert, Key: b.Key,
		ServerName:         b.ServerName,
		InsecureSkipVerify: b.InsecureSkipVerify,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: backend_tls: %w", s.File, err)
	}
	return cfg, nil
}

// openRoutes opens routes_file and route_sources; with both, routes_file
// is asked first.
func (r *imapResources) openRoutes() (route.Router, error) {
	s := r.settings
	var routers []route.Router
	if s.RoutesFile != "" {
		src, err := file.Open(s.RoutesFile)
		if err != nil {
			return nil, fmt.Errorf("%s: routes_file: %w", s.File, err)
		}
		r.routes = src
		routers = append(routers, src)
	}
	if len(s.RouteSources) > 0 {
		router, reload, closeAll, err := openIMAPRouteSources(s)
		if err != nil {
			return nil, err
		}
		r.reloadSources, r.closeSources = reload, closeAll
		routers = append(routers, router)
	}
	if len(routers) == 1 {
		return routers[0], nil
	}
	return route.Chain(routers...), nil
}

// reload re-reads the routes and certificates. What fails to load keeps
// its previous state; the errors are returned together.
func (r *imapResources) reload(log *slog.Logger) (backendTLS *tls.Config, err error) {
	var errs []error
	if r.routes != nil {
		if err := r.routes.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("routes_file: %w", err))
		} else {
			log.Info("imap: routes reloaded", "file", r.routes.Path(), "rules", r.routes.Rules())
		}
	}
	if r.reloadSources != nil {
		if err := r.reloadSources(); err != nil {
			errs = append(errs, fmt.Errorf("route_sources: %w", err))
		} else {
			log.Info("imap: routes reloaded", "sources", len(r.settings.RouteSources))
		}
	}
	if r.serverTLS != nil {
		if err := r.serverTLS.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("tls: %w", err))
		} else {
			log.Info("imap: certificate reloaded", "cert", r.settings.TLSCert)
		}
	}
	bt, err := loadIMAPBackendTLS(r.settings)
	if err != nil {
		errs = append(errs, err)
	} else {
		r.backendTLS = bt
	}
	return r.backendTLS, errors.Join(errs...)
}

// clientTLS is the configuration for STARTTLS and implicit-TLS listeners
// (nil without tls:).
func (r *imapResources) clientTLS() *tls.Config {
	if r.serverTLS == nil {
		return nil
	}
	return r.serverTLS.Config()
}

// imapServerNameRouter applies backend_tls.server_name to backends whose
// route does not name a server itself (server name = the URL's host).
func imapServerNameRouter(next route.Router, serverName string) route.Router {
	if serverName == "" || next == nil {
		return next
	}
	return route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
		rt, err := next.Lookup(ctx, req)
		if err != nil {
			return rt, err
		}
		backends := make([]route.Backend, len(rt.Backends))
		for i, b := range rt.Backends {
			if host, _, err := net.SplitHostPort(b.Addr); err == nil && b.ServerName == host {
				b.ServerName = serverName
			}
			backends[i] = b
		}
		rt.Backends = backends
		return rt, nil
	})
}

// close releases the route sources' and the penalty store's connections.
func (r *imapResources) close() error {
	var errs []error
	if r.closeSources != nil {
		errs = append(errs, r.closeSources())
	}
	if r.closePenalty != nil {
		errs = append(errs, r.closePenalty())
	}
	return errors.Join(errs...)
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/config"
	"github.com/pipegate/pipegate/tlsconf"
)

// imapResources are what a config names outside itself: certificates,
// routes and the penalty store. Certificates and routes can be reloaded
// (SIGHUP).
type imapResources struct {
	settings     *imapSettings
	serverTLS    *tlsconf.Server // nil without tls:
	backendTLS   *tls.Config
	routes       *config.Routes
	router       route.Router
	penalty      limit.PenaltyStore // nil: in-process
	closePenalty func() error       // releases the penalty store's Redis client
}

// openIMAPResources loads the certificates and the routes a checked config
// names. Errors name the config file, the line, the field and the file at
// fault. It connects to nothing.
func openIMAPResources(s *imapSettings) (*imapResources, error) {
	r := &imapResources{settings: s}
	var errs []error
	if s.TLS != nil {
		srv, err := tlsconf.LoadServer(*s.TLS)
		if err != nil {
			errs = append(errs, s.doc.Error("tls.cert", err))
		}
		r.serverTLS = srv
	}
	bt, err := loadIMAPBackendTLS(s)
	errs = append(errs, err)
	r.backendTLS = bt
	routes, err := config.Open(context.Background(), s.Routes)
	if err != nil {
		errs = append(errs, imapRouteError(s, err))
	} else {
		r.routes, r.router = routes, routes
	}
	if p := s.Penalty; p != nil && p.Redis != nil {
		r.penalty, r.closePenalty = limit.NewRedisPenaltyStore(p.Redis, p.RedisPrefix)
	}
	if err := errors.Join(errs...); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func loadIMAPBackendTLS(s *imapSettings) (*tls.Config, error) {
	cfg, err := tlsconf.LoadClient(s.BackendTLS)
	if err != nil {
		return nil, s.doc.Error("backend_tls", err)
	}
	return cfg, nil
}

// imapRouteError names the line of a route problem in the config file:
// "FILE:LINE: route_sources[1].url: problem".
func imapRouteError(s *imapSettings, err error) error {
	if many, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range many.Unwrap() {
			errs = append(errs, imapRouteError(s, e))
		}
		return errors.Join(errs...)
	}
	fe, ok := errors.AsType[*config.FieldError](err)
	if !ok {
		return s.doc.Error("route_sources", err)
	}
	line := fe.Line
	if line == 0 {
		line = s.doc.Line(fe.Key())
	}
	return &configerr.Error{File: s.File, Line: line, Field: fe.Key(), Err: fe.Err}
}

// reload re-reads the routes and certificates. What fails to load keeps
// its previous state; the errors are returned together.
func (r *imapResources) reload(log *slog.Logger) (backendTLS *tls.Config, err error) {
	var errs []error
	if err := r.routes.Reload(); err != nil {
		errs = append(errs, imapRouteError(r.settings, err))
	} else {
		log.Info("imap: routes reloaded", "routes_file", r.settings.Routes.RoutesFile, "rules", r.routes.Rules(), "route_sources", len(r.settings.Routes.Sources))
	}
	if r.serverTLS != nil {
		if err := r.serverTLS.Reload(); err != nil {
			errs = append(errs, r.settings.doc.Error("tls.cert", err))
		} else {
			log.Info("imap: certificate reloaded", "cert", r.settings.TLS.Cert)
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

// close releases the route sources' and the penalty store's connections.
func (r *imapResources) close() error {
	var errs []error
	if r.routes != nil {
		errs = append(errs, r.routes.Close())
	}
	if r.closePenalty != nil {
		errs = append(errs, r.closePenalty())
	}
	return errors.Join(errs...)
}

package maild

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/pipegate/pipegate/internal/configerr"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/config"
	"github.com/pipegate/pipegate/tlsconf"
)

// resources are what a config names outside itself: certificates,
// routes and the penalty store. Certificates and routes can be reloaded.
type resources struct {
	settings     *Settings
	serverTLS    *tlsconf.Server // nil without tls:
	backendTLS   *tls.Config
	routes       *config.Routes
	router       route.Router
	penalty      limit.PenaltyStore // nil: in-process
	closePenalty func() error       // releases the penalty store's Redis client
}

// openResources loads the certificates and the routes a checked config
// names. Errors name the config file, the line, the field and the file at
// fault. It connects to nothing.
func openResources(s *Settings) (*resources, error) {
	r := &resources{settings: s}
	var errs []error
	if s.TLS != nil {
		srv, err := tlsconf.LoadServer(*s.TLS)
		if err != nil {
			errs = append(errs, s.doc.Error("tls."+tlsconf.Setting(err), err))
		}
		r.serverTLS = srv
	}
	bt, err := loadBackendTLS(s)
	errs = append(errs, err)
	r.backendTLS = bt
	routes, err := config.Open(context.Background(), s.Routes)
	if err != nil {
		errs = append(errs, routeError(s, err))
	} else {
		r.routes, r.router = routes, routes
		errs = append(errs, unknownPools(s, routes)...)
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

func loadBackendTLS(s *Settings) (*tls.Config, error) {
	cfg, err := tlsconf.LoadClient(s.BackendTLS)
	if err != nil {
		return nil, s.doc.Error("backend_tls", err)
	}
	return cfg, nil
}

// unknownPools names the pool:NAME backends of routes_file whose pool the
// config's pools: block does not have: their logins could only be
// unavailable. (route_sources may name any pool; they are asked at login.)
func unknownPools(s *Settings, routes *config.Routes) []error {
	path, refs := routes.Pools()
	var errs []error
	for _, ref := range refs {
		if !slices.ContainsFunc(s.Pools, func(p Pool) bool { return p.Name == ref.Pool }) {
			errs = append(errs, &configerr.Error{File: path, Line: ref.Line, Field: ref.Field,
				Err: fmt.Errorf("pool:%s: no such pool in %s's pools: block", ref.Pool, filepath.Base(s.File))})
		}
	}
	return errs
}

// routeError names the line of a route problem in the config file:
// "FILE:LINE: route_sources[1].url: problem".
func routeError(s *Settings, err error) error {
	if many, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range many.Unwrap() {
			errs = append(errs, routeError(s, e))
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
func (r *resources) reload(log *slog.Logger) (backendTLS *tls.Config, err error) {
	var errs []error
	if err := r.routes.Reload(); err != nil {
		errs = append(errs, routeError(r.settings, err))
	} else {
		log.Info(r.settings.Command+": routes reloaded", "routes_file", r.settings.Routes.RoutesFile, "rules", r.routes.Rules(), "route_sources", len(r.settings.Routes.Sources))
	}
	if r.serverTLS != nil {
		if err := r.serverTLS.Reload(); err != nil {
			errs = append(errs, r.settings.doc.Error("tls."+tlsconf.Setting(err), err))
		} else {
			log.Info(r.settings.Command+": certificate reloaded", "cert", r.settings.TLS.Cert)
			r.logCertificates(log)
		}
	}
	bt, err := loadBackendTLS(r.settings)
	if err != nil {
		errs = append(errs, err)
	} else {
		r.backendTLS = bt
	}
	return r.backendTLS, errors.Join(errs...)
}

// clientTLS is the configuration for STARTTLS and implicit-TLS listeners
// (nil without tls:).
func (r *resources) clientTLS() *tls.Config {
	if r.serverTLS == nil {
		return nil
	}
	return r.serverTLS.Config()
}

// close releases the route sources' and the penalty store's connections.
func (r *resources) close() error {
	var errs []error
	if r.routes != nil {
		errs = append(errs, r.routes.Close())
	}
	if r.closePenalty != nil {
		errs = append(errs, r.closePenalty())
	}
	return errors.Join(errs...)
}

// logCertificates says which certificates clients are served, in the
// order they are offered (ECDSA before RSA); an expired or not yet valid
// one is a warning.
func (r *resources) logCertificates(log *slog.Logger) {
	if r.serverTLS == nil {
		return
	}
	for _, c := range r.serverTLS.Served() {
		lvl := slog.LevelInfo
		if !c.Valid(time.Now()) {
			lvl = slog.LevelWarn
		}
		log.Log(context.Background(), lvl, r.settings.Command+": tls certificate", "cert", c.String(), "file", c.File)
	}
}

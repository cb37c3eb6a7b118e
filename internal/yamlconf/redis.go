package yamlconf

import (
	"errors"
	"net"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/tlsconf"
)

// Redis is the block that names a Redis server:
//
//	redis:
//	  addr: 10.0.0.20:6379        # or url: rediss://10.0.0.20:6380/2
//	  password_file: /etc/pipegate/redis.pass   # optional; wins over a password in url
//	  db: 0                       # wins over the url's /DB when given
//	  tls:                        # optional: TLS with addr (rediss:// turns it on too)
//	    ca: /etc/pipegate/redis-ca.crt
//
// A daemon that needs more (a key prefix, say) embeds it inline:
//
//	type penaltyRedis struct {
//		yamlconf.Redis `yaml:",inline"`
//		Prefix         string `yaml:"prefix"`
//	}
type Redis struct {
	URL          string     `yaml:"url"`
	Addr         string     `yaml:"addr"`
	PasswordFile string     `yaml:"password_file"`
	DB           *int       `yaml:"db"`
	TLS          *ClientTLS `yaml:"tls"`
}

// Options checks the block written at field and returns the go-redis
// options it describes, the password read from its file; timeouts, pool
// and retries are the caller's. It connects to nothing.
func (r *Redis) Options(d *Doc, field string) (*redis.Options, error) {
	var errs Errors
	var opts *redis.Options
	switch {
	case r.URL != "" && r.Addr != "":
		errs.Add(d.Errorf(field+".addr", "give url or addr, not both"))
	case r.URL != "":
		o, err := redis.ParseURL(r.URL)
		if err != nil {
			if ue, ok := errors.AsType[*url.Error](err); ok {
				err = ue.Err // without the URL, which may hold a password
			}
			errs.Add(d.Errorf(field+".url", "%v (want redis://HOST:PORT/DB, rediss://… or unix:///path)", err))
		}
		if o != nil {
			o.MinIdleConns = 0 // a client made from these connects when used, not before
		}
		opts = o
	case r.Addr != "":
		if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			errs.Add(d.Errorf(field+".addr", "%q: want HOST:PORT (%v)", r.Addr, err))
		}
		opts = &redis.Options{Addr: r.Addr}
	default:
		errs.Add(d.Errorf(field+".addr", "missing (give addr: HOST:PORT or url: redis://…)"))
	}
	if opts == nil {
		opts = &redis.Options{}
	}
	if r.PasswordFile != "" {
		pw, err := d.Secret(field+".password_file", r.PasswordFile)
		errs.Add(err)
		opts.Password = pw
	}
	if r.DB != nil {
		if *r.DB < 0 {
			errs.Add(d.Errorf(field+".db", "%d: must not be negative", *r.DB))
		}
		opts.DB = *r.DB
	}
	if r.TLS != nil {
		files, err := r.TLS.Files(d, field+".tls")
		errs.Add(err)
		if err == nil {
			tc, err := tlsconf.LoadClient(files)
			if err != nil {
				errs.Add(d.Error(field+".tls", err))
			} else {
				if tc.ServerName == "" {
					tc.ServerName, _, _ = net.SplitHostPort(opts.Addr)
				}
				opts.TLSConfig = tc
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return opts, nil
}

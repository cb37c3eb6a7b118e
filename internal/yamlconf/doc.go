// Package yamlconf is the one dialect of pipegate's YAML config files:
// snake_case keys checked against the yaml tags of the struct they go
// into, "FILE:LINE: FIELD: problem" errors (configerr.Error), durations
// that remember their line, secrets read from files, and the blocks that
// several daemons share (TLS files, Redis).
//
// A loader decodes the file, then checks values with the Doc that Load
// returns, so that every message names the file, the line and the field:
//
//	type fileConfig struct {
//		Listen       string             `yaml:"listen"`
//		DialTimeout  yamlconf.Duration  `yaml:"dial_timeout"`
//		TLS          *yamlconf.ServerTLS `yaml:"tls"`
//		Redis        *yamlconf.Redis    `yaml:"redis"`
//	}
//
//	var fc fileConfig
//	doc, err := yamlconf.Load(path, &fc) // unknown keys, wrong kinds, bad durations
//	if err != nil {
//		return err // "imap.yaml:7: listen[0].adr: unknown field (want one of: accept_proxy, addr, tls)"
//	}
//	var errs yamlconf.Errors // collects problems, at most MaxErrors
//	if fc.Listen == "" {
//		errs.Add(doc.Errorf("listen", "missing (want HOST:PORT)"))
//	}
//	dial := fc.DialTimeout.Or(5 * time.Second)
//	if fc.TLS != nil {
//		files, err := fc.TLS.Files(doc, "tls") // paths taken from the file's folder, each file readable
//		errs.Add(err)
//		_ = files // tlsconf.LoadServer(files)
//	}
//	if fc.Redis != nil {
//		opts, err := fc.Redis.Options(doc, "redis") // password_file read, url or addr checked
//		errs.Add(err)
//		_ = opts // redis.NewClient(opts)
//	}
//	return errs.Err()
//
// Keys renamed from an earlier spelling are refused with the new one:
// "max-conns: renamed to max_conns" for any kebab-case key whose snake_case
// form is known, and for other renames a struct lists them with a
// RenamedKeys method.
//
// A type with its own UnmarshalYAML (or UnmarshalText) is decoded by
// itself: Load reports its error at its line, without looking inside,
// unless the error is Positioned.
package yamlconf

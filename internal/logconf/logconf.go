// Package logconf makes the slog.Logger of pipegate's daemons from the two
// settings every config file and command line has: a format and a level.
// The config loaders check these settings with it, so that a bad value is
// a config error with its line rather than a failure at start.
//
// Usage:
//
//	log, err := logconf.New(os.Stderr, "json", "debug")
//	if err != nil {
//		return err // "log-level: unknown level \"loud\" (want debug, info, warn or error)"
//	}
//	log.Info("listening", "addr", addr)
package logconf

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w in format "text" (or "") or "json",
// at level "debug", "info" (or ""), "warn" or "error". Errors name the flag
// (log-format, log-level) and the bad value.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	lv, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format: unknown format %q (want text or json)", format)
}

// ValidFormat reports whether New takes format.
func ValidFormat(format string) bool {
	switch strings.ToLower(format) {
	case "", "text", "json":
		return true
	}
	return false
}

// ValidLevel reports whether New takes level.
func ValidLevel(level string) bool {
	_, err := parseLevel(level)
	return err == nil
}

func parseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log-level: unknown level %q (want debug, info, warn or error)", level)
}

package main

import (
	"io"
	"log/slog"

	"github.com/pipegate/pipegate/internal/logconf"
)

// newLogger returns a logger writing to w in format "text" (or "") or
// "json", at level "debug", "info" (or ""), "warn" or "error". Errors name
// the flag (--log-format, --log-level) and the bad value.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	return logconf.New(w, format, level)
}

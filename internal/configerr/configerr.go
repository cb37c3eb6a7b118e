// Package configerr is the error of one problem in a config file, shared by
// the loaders of pipegate's config files (the imap daemon's YAML, routes
// files): it reads "FILE:LINE: FIELD: problem".
//
//	return &configerr.Error{File: path, Line: node.Line, Field: "listen[1].addr", Err: err}
package configerr

import (
	"strconv"
	"strings"
)

// Error is one problem in a config file: "FILE:LINE: FIELD: problem".
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // e.g. "listen[1].addr"; "" for the whole file
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

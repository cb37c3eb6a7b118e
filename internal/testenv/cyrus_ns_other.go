//go:build !linux

package testenv

import "syscall"

// newMountNamespace: no mount namespaces here; Cyrus runs without its log.
func newMountNamespace(*syscall.SysProcAttr) bool { return false }

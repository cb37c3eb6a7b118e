package testenv

import "syscall"

// newMountNamespace makes the process started with attr run in a mount
// namespace of its own.
func newMountNamespace(attr *syscall.SysProcAttr) bool {
	attr.Unshareflags = syscall.CLONE_NEWNS
	return true
}

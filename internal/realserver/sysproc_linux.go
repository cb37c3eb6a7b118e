package realserver

import "syscall"

// sysProcAttr puts the server in its own process group (so a signal
// reaches its children too) and kills it if the test binary dies.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

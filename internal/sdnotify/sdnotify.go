// Package sdnotify tells systemd about a service's state over the socket
// named by $NOTIFY_SOCKET, as sd_notify(3) does, with the standard library
// only. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
//
//	// Serving: tell systemd, which waits for it with Type=notify.
//	sdnotify.Notify(sdnotify.Ready, sdnotify.Status("serving"))
//	// A process that takes over from the main one (a binary upgrade)
//	// names itself the main process (the unit needs NotifyAccess=all):
//	sdnotify.Notify(sdnotify.MainPID(os.Getpid()), sdnotify.Ready)
//
// A message is one datagram of newline-separated VARIABLE=VALUE lines.
// systemd accepts MAINPID= from a process other than the main one only
// with NotifyAccess=all, and (unless it comes from root) only for a
// process of the unit's own control group: a process the main one
// started qualifies.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// States to send (sd_notify(3)).
const (
	Ready     = "READY=1"     // start-up (or a reload) is finished
	Reloading = "RELOADING=1" // reloading; READY=1 follows
	Stopping  = "STOPPING=1"  // shutting down
)

// MainPID names pid the service's main process.
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status is a one-line status shown by systemctl status (newlines become
// spaces).
func Status(s string) string { return "STATUS=" + strings.ReplaceAll(s, "\n", " ") }

// Notify sends states to the socket named by $NOTIFY_SOCKET. It reports
// false, nil when the variable is unset (not run by systemd with
// Type=notify).
func Notify(states ...string) (sent bool, err error) {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return false, nil
	}
	if err := Send(socket, states...); err != nil {
		return false, err
	}
	return true, nil
}

// Send sends states as one datagram to socket: a path, or an abstract
// socket written "@name". vsock addresses ("vsock:...") are not supported.
func Send(socket string, states ...string) error {
	if len(states) == 0 {
		return errors.New("sdnotify: no state to send")
	}
	for _, s := range states {
		if !strings.Contains(s, "=") || strings.Contains(s, "\n") {
			return fmt.Errorf("sdnotify: state %q: want one VARIABLE=VALUE line", s)
		}
	}
	name := socket
	switch {
	case strings.HasPrefix(socket, "@"):
		name = "\x00" + socket[1:]
	case !strings.HasPrefix(socket, "/"):
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: want a path or @abstract name", socket)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: connecting to %s: %w", socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(states, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: sending to %s: %w", socket, err)
	}
	return nil
}

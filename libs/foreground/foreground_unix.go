//go:build linux || darwin || freebsd

package foreground

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Take puts the runner in a process group of its own and makes it the
// terminal's foreground group, so Ctrl-C reaches the runner alone: make
// (which `make run` and `make cluster` exec a runner under) re-raises a
// SIGINT it receives and would die of it even though the runner exits 0.
// The returned function gives the terminal back. Without a terminal it
// does nothing.
func Take() (restore func()) {
	fd := int(os.Stdin.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != syscall.Getpgrp() {
		return func() {} // no terminal, or not in its foreground
	}
	if syscall.Getpgrp() == os.Getpid() {
		return func() {} // already a group of its own (started by a shell)
	}
	// A background group changing the foreground gets SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		signal.Reset(syscall.SIGTTOU)
		return func() {}
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, os.Getpid()); err != nil {
		_ = syscall.Setpgid(0, fg)
		signal.Reset(syscall.SIGTTOU)
		return func() {}
	}
	return func() {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, fg)
		signal.Reset(syscall.SIGTTOU)
	}
}

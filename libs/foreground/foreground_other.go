//go:build !(linux || darwin || freebsd)

package foreground

// Take does nothing where there are no process groups.
func Take() (restore func()) { return func() {} }

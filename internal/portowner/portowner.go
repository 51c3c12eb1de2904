// Package portowner tells whether a process is the one listening on a TCP
// port. Test harnesses and the loadtest pick a free port, close it and
// hand it to a gateway they start; until the gateway binds it, any other
// process may take it, and a readiness probe would then be answered by
// that process. Asking the kernel who holds the listener closes the gap.
package portowner

import "errors"

// ErrUnsupported is returned where the system does not say who holds a
// socket (anywhere but Linux); callers then go by the answer on the port.
var ErrUnsupported = errors.ErrUnsupported

// Listens reports whether process pid holds a TCP socket listening on port,
// on any local address, IPv4 or IPv6, in pid's network namespace. A
// process that is gone is an error.
func Listens(pid, port int) (bool, error) { return listens(pid, port) }

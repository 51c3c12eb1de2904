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

// Verdict is whose answer a readiness probe got on a port.
type Verdict int

const (
	// Unsure: the process was not seen listening, nor anyone else (it
	// may be gone, or the listener not yet visible); probe again.
	Unsure Verdict = iota
	// Ours: the process holds the listener, or the system cannot tell
	// (ErrUnsupported), in which case the answer is taken as its.
	Ours
	// Theirs: another process holds the port; the one started lost it.
	Theirs
)

// Answerer tells whose answer a probe of port got, given that pid is the
// process started to listen there: what every caller of Listens decides.
func Answerer(pid, port int) Verdict {
	mine, err := Listens(pid, port)
	switch {
	case mine || errors.Is(err, ErrUnsupported):
		return Ours
	case err == nil:
		return Theirs
	}
	return Unsure
}

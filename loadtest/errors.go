package loadtest

import (
	"context"
	"errors"
	"net"
	"strconv"
)

// ErrorClass names why a push failed, in the classes the report counts.
type ErrorClass string

// The error classes, from the pusher's point of view.
const (
	ClassTimeout    ErrorClass = "timeout"    // client timeout or deadline
	ClassConnection ErrorClass = "connection" // refused, reset, EOF, DNS
	Class4xx        ErrorClass = "4xx"
	Class5xx        ErrorClass = "5xx"
	ClassCanceled   ErrorClass = "canceled" // the harness was interrupted
	ClassKilled     ErrorClass = "killed"   // in flight to a peer the harness killed (-kill-peer-after)
	ClassOther      ErrorClass = "other"    // 3xx/1xx answers, gather or encode errors
)

// classify sorts a push error into its class, and returns the HTTP status
// code when the server answered.
func classify(err error) (ErrorClass, int) {
	var se *StatusError
	if errors.As(err, &se) {
		return statusClass(se.Code), se.Code
	}
	var ke *KilledError
	var ne net.Error
	switch {
	case errors.As(err, &ke):
		return ClassKilled, 0
	case errors.Is(err, context.Canceled):
		return ClassCanceled, 0
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout, 0
	case errors.As(err, &ne):
		// Every other transport failure (url.Error wraps them all) is about
		// the connection: refused, reset, closed mid-answer, no route.
		return ClassConnection, 0
	}
	return ClassOther, 0
}

func statusClass(code int) ErrorClass {
	switch {
	case code >= 500:
		return Class5xx
	case code >= 400:
		return Class4xx
	}
	return ClassOther
}

// codeKey renders a status code as a JSON object key.
func codeKey(code int) string { return strconv.Itoa(code) }

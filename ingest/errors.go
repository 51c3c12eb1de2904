package ingest

import (
	"errors"
	"fmt"

	"github.com/pushring/pushring/store"
)

// Sentinel errors of package ingest. Match them with errors.Is; the api
// maps them, with the store's, to HTTP status codes.
var (
	// ErrBadRequest wraps every rejection of a malformed path or body (400).
	// The error text is the response body, worded as the Pushgateway words it.
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge wraps a push body over the configured size limit (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrNotFound wraps a path that is not a push route (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed wraps a method other than PUT, POST or DELETE (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrOverloaded wraps a refusal to take a request because the peer is
	// at capacity (503): the api's admission control returns it, and the
	// pusher should retry later, elsewhere or slower.
	ErrOverloaded = errors.New("overloaded")
)

// requestError tags a cause with one of the sentinels while keeping the
// cause's text as the whole message: pushers (and tests written against the
// Pushgateway) compare 400 bodies, so no "bad request: " prefix may appear.
type requestError struct {
	kind  error
	cause error
}

func (e *requestError) Error() string { return e.cause.Error() }

// Unwrap exposes both the sentinel and the cause (e.g. a gzip or
// expfmt.ParseError) to errors.Is and errors.As.
func (e *requestError) Unwrap() []error { return []error{e.kind, e.cause} }

// badRequest returns a 400 error whose text is the formatted message.
func badRequest(format string, args ...any) error {
	return &requestError{kind: ErrBadRequest, cause: fmt.Errorf(format, args...)}
}

// asBadRequest tags err as a 400 unless it already carries a sentinel of
// this package (a size overrun surfacing through a parser stays a 413).
func asBadRequest(err error) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBadRequest) {
		return err
	}
	return &requestError{kind: ErrBadRequest, cause: err}
}

// errPageNotFound is the text of a 404, the body Go's http.NotFound writes
// and so the one the Pushgateway answers for paths it does not route.
var errPageNotFound = errors.New("404 page not found")

// invalidUTF8Error rejects a grouping label value that is not valid UTF-8.
// Its text starts with store.ErrInconsistent's, the prefix the Pushgateway's
// own (later) rejection of such a push carries.
type invalidUTF8Error struct {
	name, value string
}

func (e *invalidUTF8Error) Error() string {
	return fmt.Sprintf("%v: grouping label %q has a value that is not valid UTF-8: %q",
		store.ErrInconsistent, e.name, e.value)
}

// Unwrap makes the error match ErrBadRequest and store.ErrInconsistent.
func (e *invalidUTF8Error) Unwrap() []error {
	return []error{ErrBadRequest, store.ErrInconsistent}
}

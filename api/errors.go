package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

// handlerFunc is the shape of every handler in this package: it writes a
// successful response itself and returns an error for writeError to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// statusError is answered with a fixed status and its text as the whole
// body, without the newline http.Error appends: the Pushgateway writes its
// lifecycle answers that way and pushers' tests compare the bytes.
type statusError struct {
	code int
	text string
}

func (e *statusError) Error() string { return e.text }

// Errors answered by this package itself.
var (
	errLifecycleDisabled = &statusError{code: http.StatusForbidden, text: "Lifecycle API is not enabled."}
	errQuitMethod        = &statusError{code: http.StatusMethodNotAllowed, text: "Only POST or PUT requests allowed."}
	errNotFound          = errors.New("404 page not found")
	// errAbort means the response was partly written when the handler
	// failed: the only honest answer left is to break the connection, so a
	// scraper sees a failed scrape instead of a truncated one.
	errAbort = errors.New("response aborted")
)

// scrapeError is a failure to produce /metrics before anything was written.
// contentType is the versioned text Content-Type with the negotiated
// escaping, so that every scrape answer names its format and escaping.
type scrapeError struct {
	err         error
	contentType string
}

func (e *scrapeError) Error() string {
	return "An error has occurred while serving metrics:\n\n" + e.err.Error()
}

func (e *scrapeError) Unwrap() error { return e.err }

// methodNotAllowedError is a 405 that lists the allowed methods.
type methodNotAllowedError struct{ allow string }

func (e *methodNotAllowedError) Error() string { return http.StatusText(http.StatusMethodNotAllowed) }

// answered is an error that carries the answer the pusher gets: a push
// forwarded to the peer that owns its group, answered there, or whose
// owner did not answer.
type answered interface {
	error
	HTTPStatus() int
	RetryAfterSeconds() int // 0: no Retry-After
}

// statusOf maps an error to its HTTP status. It is the only place that
// does, for this package's errors, the ingester's and the store's
// sentinels, and errors that carry their answer.
func statusOf(err error) int {
	if err == nil { // before the targets of errors.As, which escape
		return http.StatusOK
	}
	var se *statusError
	var sc *scrapeError
	var mna *methodNotAllowedError
	var an answered
	var bt *bodyTimeoutError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &bt):
		return http.StatusRequestTimeout
	case errors.As(err, &sc):
		return http.StatusInternalServerError
	case errors.As(err, &mna):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.As(err, &an):
		return an.HTTPStatus()
	}
	return pushStatus(err)
}

// pushStatus maps the ingester's and the store's sentinels. A store limit
// is 429: the push was fine, the peer is full, and it may succeed once
// groups expire or are deleted. Admission control's refusal is 503.
func pushStatus(err error) int {
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrLimit):
		return http.StatusTooManyRequests
	case errors.Is(err, ingest.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ingest.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ingest.ErrUnsupportedEncoding):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ingest.ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ingest.ErrBadRequest), errors.Is(err, store.ErrInconsistent):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// retryAfter returns the Retry-After seconds that go with err's answer (0:
// none): overload says 1 s, an error that carries its answer says its own.
func retryAfter(err error) int {
	var an answered
	switch {
	case errors.As(err, &an):
		return an.RetryAfterSeconds()
	case errors.Is(err, ingest.ErrOverloaded):
		return 1
	}
	return 0
}

// Answer returns the HTTP status and Retry-After seconds (0: none) of a
// push that failed with err, as this package answers it over HTTP. The
// owner of a forwarded push answers with it, so the peer that took the
// push relays what a direct push would have got.
func Answer(err error) (code, retryAfterSeconds int) {
	return statusOf(err), retryAfter(err)
}

// serve adapts a handlerFunc to http.Handler: an error becomes its status and
// body with http.Error semantics (text/plain, nosniff, text + "\n").
func (a *API) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAbort) {
		a.logger.Warn("aborting a partly written response", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	code := statusOf(err)
	a.logRequestError(r, code, err)
	var se *statusError
	if errors.As(err, &se) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(se.text))
		return
	}
	var sc *scrapeError
	if errors.As(err, &sc) && sc.contentType != "" {
		w.Header().Del("Content-Encoding")
		w.Header().Set("Content-Type", sc.contentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_, _ = fmt.Fprintln(w, err.Error())
		return
	}
	var mna *methodNotAllowedError
	if errors.As(err, &mna) {
		w.Header().Set("Allow", mna.allow)
	}
	if s := retryAfter(err); s > 0 {
		// Overloaded, or the group's owner did not answer: the pusher
		// should come back soon rather than give up; a second is many push
		// durations, so slots will have freed by then. A forwarded push
		// relays the owner's value.
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	http.Error(w, err.Error(), code)
}

// logRequestError logs server faults as errors; a client's mistake is only
// worth a debug line, since a broken pusher would otherwise flood the log.
func (a *API) logRequestError(r *http.Request, code int, err error) {
	level := slog.LevelDebug
	if code >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	a.logger.Log(r.Context(), level, "request failed",
		"method", r.Method, "path", r.URL.Path, "code", code, "err", err)
}

// wrapf wraps err with context, keeping it matchable with errors.Is.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

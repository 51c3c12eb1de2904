package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushring/pushring/store"
)

// Request is one push or delete as the HTTP layer received it.
type Request struct {
	Method          string // PUT, POST or DELETE
	Path            string // escaped path after "<prefix>/metrics", e.g. "/job/x/a/b"
	ContentType     string
	ContentEncoding string
	Body            io.Reader
	Header          map[string][]string // for later (TTL header)
}

// Result is what the pusher is told on success.
type Result struct {
	Status int // 200 or 202
}

// Store is what the ingester needs of the store. Implementations are safe
// for concurrent use and do not block on I/O.
type Store interface {
	// Apply checks and applies one push, taking ownership of its families.
	// A rejection wraps store.ErrInconsistent.
	Apply(p store.Push) error
	// Delete removes a group and reports whether it existed.
	Delete(k store.GroupKey) bool
}

// Ingester turns push and delete requests into store writes. It is safe for
// concurrent use.
type Ingester struct {
	cfg     Config
	st      Store
	now     func() time.Time
	logger  *slog.Logger
	metrics *metrics
}

// New returns an ingester writing to st. now is the clock (time.Now in
// production; nil means time.Now); a nil logger discards.
func New(cfg Config, st Store, now func() time.Time, logger *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if st == nil {
		return nil, errors.New("ingest: nil store")
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{cfg: cfg, st: st, now: now, logger: logger, metrics: newMetrics(reg)}, nil
}

// Handle parses, validates and applies one request. On error, StatusOf
// gives the status and, for 4xx, the error text is the response body.
func (in *Ingester) Handle(ctx context.Context, r Request) (Result, error) {
	res, reason, err := in.handle(ctx, r)
	code := res.Status
	if err != nil {
		code = StatusOf(err)
		in.logger.Debug("request rejected", "method", r.Method, "code", code, "reason", reason, "err", err)
	}
	in.metrics.observe(r.Method, code, reason)
	return res, err
}

// handle returns the result, or an error and the rejection reason for the
// self-metrics ("" when the error is not a rejection of the request).
func (in *Ingester) handle(ctx context.Context, r Request) (Result, string, error) {
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		return in.push(ctx, r)
	case http.MethodDelete:
		return in.delete(r)
	default:
		return Result{}, "", &requestError{kind: ErrMethodNotAllowed,
			cause: fmt.Errorf("method %q not allowed; use PUT, POST or DELETE", r.Method)}
	}
}

// push handles PUT (replace the group) and POST (replace the pushed
// families). Path errors come before body errors, as in the Pushgateway.
func (in *Ingester) push(ctx context.Context, r Request) (Result, string, error) {
	key, err := ParseGroupingPath(r.Path)
	if err != nil {
		return Result{}, reasonPath, err
	}
	fams, n, err := decodeBody(r.Body, r.ContentType, r.ContentEncoding, in.cfg.MaxBodyBytes)
	in.metrics.bodyBytes.Observe(float64(n))
	if err != nil {
		return Result{}, bodyReason(err), err
	}
	Sanitize(fams, key)
	if err := ctx.Err(); err != nil {
		return Result{}, "", fmt.Errorf("push abandoned before it was applied: %w", err)
	}
	p := store.Push{Key: key, Replace: r.Method == http.MethodPut, Families: fams, Time: in.now()}
	if err := in.st.Apply(p); err != nil {
		if errors.Is(err, store.ErrInconsistent) {
			return Result{}, reasonInconsistent, err // its text is the 400 body
		}
		return Result{}, "", fmt.Errorf("apply push: %w", err)
	}
	if in.cfg.DisableConsistencyCheck {
		return Result{Status: http.StatusAccepted}, "", nil
	}
	return Result{Status: http.StatusOK}, "", nil
}

// delete removes a group; the body is ignored. It answers 202 whether or
// not the group existed, which client_golang's Delete insists on.
func (in *Ingester) delete(r Request) (Result, string, error) {
	key, err := ParseGroupingPath(r.Path)
	var badUTF8 *invalidUTF8Error
	if errors.As(err, &badUTF8) {
		// No group can have this key, so there is nothing to delete; the
		// Pushgateway answers 202 here too.
		return Result{Status: http.StatusAccepted}, "", nil
	}
	if err != nil {
		return Result{}, reasonPath, err
	}
	in.st.Delete(key)
	return Result{Status: http.StatusAccepted}, "", nil
}

// bodyReason classifies a body decoding error for the self-metrics.
func bodyReason(err error) string {
	if errors.Is(err, ErrTooLarge) {
		return reasonTooLarge
	}
	return reasonBody
}

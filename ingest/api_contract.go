package ingest

// CONTRACT FILE (temporary): exported surface of package ingest that api and
// cmd/gateway program against. The ingest helper replaces the stubs with the
// real implementation (path.go, body.go, sanitize.go, ingester.go, config.go)
// and deletes this file.

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// Errors returned by the ingester. api maps them to status codes: everything
// wrapping ErrBadRequest is 400 (the error text is the body), ErrTooLarge is
// 413, store.ErrInconsistent is 400.
var (
	ErrBadRequest = errors.New("bad request")
	ErrTooLarge   = errors.New("request body too large")
)

// Config configures the ingester.
type Config struct {
	// DisableConsistencyCheck only changes the success status to 202, as
	// with the Pushgateway; the O(push) check always runs (docs/compat.md).
	DisableConsistencyCheck bool
	// MaxBodyBytes bounds a body after decompression (0 = unlimited for now;
	// the limits issue sets a default).
	MaxBodyBytes int64
}

// RegisterFlags registers the ingester's flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { panic("todo") }

// Validate checks the configuration.
func (c *Config) Validate() error { panic("todo") }

// ParseGroupingPath parses the escaped URL path after "<prefix>/metrics",
// e.g. "/job/batch/instance@base64/aG9zdA==", into a grouping key with the
// Pushgateway's rules and error texts (shared/pushgateway-spec.md §1).
// Errors wrap ErrBadRequest.
func ParseGroupingPath(escapedPath string) (store.GroupKey, error) { panic("todo") }

// DecodeBody reads a push body: delimited protobuf when contentType says so,
// text 0.0.4 otherwise; gzip (any case) or snappy per contentEncoding; at most
// maxBytes after decompression (0 = no limit). Errors wrap ErrBadRequest or
// ErrTooLarge.
func DecodeBody(body io.Reader, contentType, contentEncoding string, maxBytes int64) (map[string]*dto.MetricFamily, error) {
	panic("todo")
}

// Sanitize forces every grouping label of key onto every metric, adds
// instance="" where missing, and sorts label pairs by name.
func Sanitize(fams map[string]*dto.MetricFamily, key store.GroupKey) { panic("todo") }

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

// Store is what the ingester needs of the store. Implementations are safe for
// concurrent use.
type Store interface {
	Apply(p store.Push) error
	Delete(k store.GroupKey) bool
}

// Ingester turns requests into store writes.
type Ingester struct{}

// New returns an ingester writing to st. now is the clock (time.Now in production).
func New(cfg Config, st Store, now func() time.Time, logger *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	panic("todo")
}

// Handle parses, validates and applies one request.
func (in *Ingester) Handle(ctx context.Context, r Request) (Result, error) { panic("todo") }

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	Header          map[string][]string // canonical keys, as in http.Header; read for TTLHeader
	// Forwarded marks a push another peer forwarded to this one: it is
	// applied here whoever owns it in this peer's view, never forwarded
	// again.
	Forwarded bool
}

// Result is what the pusher is told on success.
type Result struct {
	Status int // 200 or 202

	forwarded bool // the owner peer applied it
}

// Store is what the ingester needs of the store. Implementations are safe
// for concurrent use and do not block on I/O.
type Store interface {
	// Apply checks and applies one push, taking ownership of its families.
	// A rejection wraps store.ErrInconsistent, or store.ErrLimit when the
	// peer holds as many groups or series as it may.
	Apply(p store.Push) error
	// Delete removes a group and reports whether it existed.
	Delete(k store.GroupKey) bool
}

// Ingester turns push and delete requests into store writes. It is safe for
// concurrent use.
type Ingester struct {
	cfg     Config
	limits  limits
	st      Store
	now     func() time.Time
	logger  *slog.Logger
	metrics *metrics

	rules    atomic.Pointer[ttlRules] // swapped whole by ReloadRules
	reloadMu sync.Mutex               // serialises ReloadRules

	// Set by JoinCluster; nil cluster: a single peer.
	cluster    Cluster
	clusterCfg ClusterConfig
	peers      *Peers
	handOff    HandOffStore
	leaving    atomic.Bool // Drain began: route as if this peer had left
	// handOffPoke (buffer 1) wakes RunHandOff when a group this peer does
	// not own was stored here.
	handOffPoke  chan struct{}
	handOffSweep time.Duration // handOffSweep; tests lengthen it
}

// New returns an ingester writing to st. now is the clock (time.Now in
// production; nil means time.Now); a nil logger discards. It reads
// cfg.TTLRulesFile once: a file that does not load is an error, so a broken
// file stops the gateway from starting rather than being ignored.
func New(cfg Config, st Store, now func() time.Time, logger *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if st == nil {
		return nil, errors.New("ingest: nil store")
	}
	rules, err := loadRules(cfg.TTLRulesFile)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	in := &Ingester{cfg: cfg, limits: limitsOf(cfg), st: st, now: now, logger: logger, metrics: newMetrics(reg)}
	in.rules.Store(rules)
	in.metrics.lastReload.Set(unixSeconds(now()))
	in.metrics.reloadOK.Set(1)
	if cfg.TTLRulesFile != "" {
		logger.Info("TTL rules loaded", "file", cfg.TTLRulesFile, "rules", rules.len())
	}
	return in, nil
}

// CountOverloaded counts a push the api refused before handing it to
// Handle because the peer was at capacity (ErrOverloaded, 503).
func (in *Ingester) CountOverloaded() {
	in.metrics.rejected.WithLabelValues(reasonOverloaded).Inc()
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
	var re *RemoteError
	if res.forwarded || errors.As(err, &re) {
		return res, err // counted by the owner, and as forwarded here
	}
	in.metrics.observe(r.Method, code, reason)
	return res, err
}

// handle returns the result, or an error and the rejection reason for the
// self-metrics ("" when the error is not a rejection of the request).
func (in *Ingester) handle(ctx context.Context, r Request) (Result, string, error) {
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		return Result{}, "", &requestError{kind: ErrMethodNotAllowed,
			cause: fmt.Errorf("method %q not allowed; use PUT, POST or DELETE", r.Method)}
	}
	// The path is parsed once; an error is answered by push or delete, in
	// their order of checks.
	key, keyErr := ParseGroupingPath(r.Path)
	if keyErr == nil {
		if owner, ok := in.route(r, key); ok {
			return in.forward(ctx, owner, r, key)
		}
	}
	if r.Method == http.MethodDelete {
		return in.delete(key, keyErr)
	}
	return in.push(ctx, r, key, keyErr)
}

// push handles PUT (replace the group) and POST (replace the pushed
// families). Every check runs before the store sees the push, so a rejected
// push changes nothing.
func (in *Ingester) push(ctx context.Context, r Request, key store.GroupKey, keyErr error) (Result, string, error) {
	p, reason, err := in.prepare(r, key, keyErr)
	if err != nil {
		return Result{}, reason, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, "", fmt.Errorf("push abandoned before it was applied: %w", err)
	}
	if err := in.st.Apply(p); err != nil {
		reason, err := storeRejection(err)
		return Result{}, reason, err
	}
	if r.Forwarded && in.cluster != nil {
		// The sender's view of the members differs from ours: if the group
		// is not ours either, it has to move on.
		if o := in.view().Owner(p.Key.Hash()); o.ID != in.cluster.Self() {
			in.PokeHandOff()
		}
	}
	if in.cfg.DisableConsistencyCheck {
		return Result{Status: http.StatusAccepted}, "", nil
	}
	return Result{Status: http.StatusOK}, "", nil
}

// prepare turns a push request into a store.Push, or fails with the
// rejection reason. The order is the Pushgateway's where it has one (path
// errors before body errors); the cheap checks of the URL and headers come
// before the body is read.
func (in *Ingester) prepare(r Request, key store.GroupKey, keyErr error) (store.Push, string, error) {
	if keyErr != nil {
		return store.Push{}, reasonPath, keyErr
	}
	ls := key.Labels()
	if err := in.limits.checkKey(ls); err != nil {
		return store.Push{}, limitReason(err), err
	}
	ttl, err := in.ttlFor(ls, r.Header[ttlHeaderKey])
	if err != nil {
		return store.Push{}, reasonTTL, err
	}
	fams, n, err := decodeBody(r.Body, r.ContentType, r.ContentEncoding, in.cfg.MaxBodyBytes)
	in.metrics.bodyBytes.Observe(float64(n))
	if err != nil {
		return store.Push{}, bodyReason(err), err
	}
	sanitize(fams, ls)
	if err := in.limits.check(fams); err != nil {
		return store.Push{}, limitReason(err), err
	}
	return store.Push{Key: key, Replace: r.Method == http.MethodPut, Families: fams, Time: in.now(), TTL: ttl}, "", nil
}

// delete removes a group; the body is ignored. It answers 202 whether or
// not the group existed, which client_golang's Delete insists on.
func (in *Ingester) delete(key store.GroupKey, err error) (Result, string, error) {
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

// storeRejection classifies an error of Store.Apply: a rejection of the
// push keeps its text (it is the response body) and gets its reason; any
// other failure is the server's and is wrapped.
func storeRejection(err error) (string, error) {
	switch {
	case errors.Is(err, store.ErrInconsistent):
		if r := store.RejectReason(err); r == reasonTimestamp || r == reasonInvalid {
			return r, err
		}
		return reasonInconsistent, err
	case errors.Is(err, store.ErrLimit):
		return storeLimitReason(err), err
	}
	return "", fmt.Errorf("apply push: %w", err)
}

// storeLimitReason tells a refusal by --store.max-groups from one by
// --store.max-series. The store has one sentinel for both, and its message
// names the flag to raise (the agreed contract), so the flag name is what
// is matched; TestStoreLimitReason pins it against the real store.
func storeLimitReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "--"+storeFlagMaxGroups):
		return reasonMaxGroups
	case strings.Contains(msg, "--"+storeFlagMaxSeries):
		return reasonMaxSeries
	default:
		return reasonStoreLimit
	}
}

// limitReason returns the reason of a limitError.
func limitReason(err error) string {
	var le *limitError
	if errors.As(err, &le) {
		return le.reason
	}
	return ""
}

// bodyReason classifies a body decoding error for the self-metrics.
func bodyReason(err error) string {
	if errors.Is(err, ErrTooLarge) {
		return reasonTooLarge
	}
	return reasonBody
}

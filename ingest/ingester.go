package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
}

// Result is what the pusher is told on success.
type Result struct {
	Status int // 200 or 202
}

// Store is what the ingester needs of the store. Implementations are safe
// for concurrent use and do not block on I/O.
type Store interface {
	// Apply checks and applies one push. It must not keep p.Families, or
	// anything in them, once it returns: the ingester reuses their memory
	// for later pushes.
	// A rejection wraps store.ErrInconsistent, or is a *store.LimitError
	// when the peer holds as many groups or series as it may.
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
	repeat  Repeater // st, if it offers repeated pushes; else nil
	now     func() time.Time
	logger  *slog.Logger
	metrics *metrics

	rules    atomic.Pointer[ttlRules] // swapped whole by ReloadRules
	reloadMu sync.Mutex               // serialises ReloadRules
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
	in.repeat, _ = st.(Repeater)
	in.rules.Store(rules)
	in.metrics.lastReload.Set(unixSeconds(now()))
	in.metrics.reloadOK.Set(1)
	if cfg.TTLRulesFile != "" {
		logger.Info("TTL rules loaded", "file", cfg.TTLRulesFile, "rules", rules.len())
	}
	return in, nil
}

// CountOverloaded counts a push the api refused before it reached the
// ingester because the peer was at capacity.
func (in *Ingester) CountOverloaded() {
	in.metrics.rejected.WithLabelValues(reasonOverloaded).Inc()
}

// CountUnavailable counts a push refused because the peer that owns its
// group did not answer when it was forwarded there.
func (in *Ingester) CountUnavailable() {
	in.metrics.rejected.WithLabelValues(reasonOwnerUnavailable).Inc()
}

// CountRefused counts a push the api refused while reading its body, under
// one of ReasonMemoryBudget, ReasonBodyTimeout and ReasonBody; any other
// reason is counted as ReasonBody, so the label keeps its fixed set.
func (in *Ingester) CountRefused(reason string) {
	switch reason {
	case ReasonMemoryBudget, ReasonBodyTimeout:
	default:
		reason = ReasonBody
	}
	in.metrics.rejected.WithLabelValues(reason).Inc()
}

// Parsed is a request whose method, grouping path and TTL header have been
// read, but not its body. Parse makes one and Apply applies it; in a
// cluster, the peer that received it decides by Key where it goes.
type Parsed struct {
	Request
	key         store.GroupKey
	labels      []store.Label // key.Labels() of a push, split once
	keyErr      error         // the path does not parse
	methodErr   error
	ttl         time.Duration
	ttlErr      error // the TTL header is refused
	bodyRefused bool  // the body was refused as it was read
}

// Key returns the key of the request's group, and whether the request may
// go to the peer that owns the group: false when any peer would refuse it
// as it stands (its method, its path, its TTL header or the body as it was
// read are wrong), so the peer that received it answers it.
func (p Parsed) Key() (store.GroupKey, bool) {
	return p.key, p.methodErr == nil && p.keyErr == nil && p.ttlErr == nil && !p.bodyRefused
}

// Parse reads what a request says without its body: the method, the
// grouping key, and the TTL of a push. It never fails; Apply returns the
// errors it found, in the order the Pushgateway checks.
func (in *Ingester) Parse(r Request) Parsed {
	p := Parsed{Request: r}
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		p.methodErr = &requestError{kind: ErrMethodNotAllowed,
			cause: fmt.Errorf("method %q not allowed; use PUT, POST or DELETE", r.Method)}
		return p
	}
	p.key, p.keyErr = in.parsePath(r.Path)
	if p.keyErr == nil && r.Method != http.MethodDelete {
		p.labels = p.key.Labels()
		p.ttl, p.ttlErr = in.ttlFor(p.labels, r.Header[ttlHeaderKey])
		// A body refused as it was read (too large, undecodable, an
		// unsupported encoding) is refused by every peer alike: it is
		// answered where it arrived, without shipping it.
		if b, read := r.Body.(*Body); read && b.Err() != nil {
			p.bodyRefused = true
		}
	}
	return p
}

// Handle parses, validates and applies one request here.
func (in *Ingester) Handle(ctx context.Context, r Request) (Result, error) {
	return in.Apply(ctx, in.Parse(r))
}

// Apply validates and applies a parsed request on this peer. A refusal
// wraps one of this package's sentinels (or the store's), which the api
// maps to a status; for 4xx the error text is the response body.
func (in *Ingester) Apply(ctx context.Context, p Parsed) (Result, error) {
	res, reason, err := in.apply(ctx, p)
	if err != nil {
		in.logger.Debug("request rejected", "method", p.Method, "reason", reason, "err", err)
	}
	if reason != "" {
		in.metrics.rejected.WithLabelValues(reason).Inc()
	}
	return res, err
}

// apply returns the result, or an error and the rejection reason for the
// self-metrics ("" when the error is not a rejection of the request).
func (in *Ingester) apply(ctx context.Context, p Parsed) (Result, string, error) {
	if p.methodErr != nil {
		return Result{}, "", p.methodErr
	}
	if p.Method == http.MethodDelete {
		return in.delete(p.key, p.keyErr)
	}
	return in.push(ctx, p)
}

// push handles PUT (replace the group) and POST (replace the pushed
// families). Every check runs before the store sees the push, so a rejected
// push changes nothing. A push that repeats its group's last push but for
// the values is applied as new values (repeat.go); any other, and one the
// store declines to repeat, goes the full way.
func (in *Ingester) push(ctx context.Context, r Parsed) (Result, string, error) {
	ls, reason, err := in.checkHead(r)
	if err != nil {
		return Result{}, reason, err
	}
	sc := in.scanRepeat(r)
	if sc != nil {
		defer putRepeatScan(sc)
		if err := ctx.Err(); err != nil {
			return Result{}, "", fmt.Errorf("push abandoned before it was applied: %w", err)
		}
		if in.repeat.ApplyRepeat(in.repeatOf(r, sc)) {
			if sc.proto && !sc.byTemplate {
				templates.keep(sc) // its shape repeats
			}
			in.metrics.bodyBytes.Observe(float64(r.Body.(*Body).Len()))
			return in.accepted(), "", nil
		}
	}
	p, release, reason, err := in.prepare(r, ls)
	if err != nil {
		return Result{}, reason, err
	}
	// The families live in a pooled parser's memory until the store has
	// rendered them (it keeps no client structs).
	defer release()
	if err := ctx.Err(); err != nil {
		return Result{}, "", fmt.Errorf("push abandoned before it was applied: %w", err)
	}
	if err := in.st.Apply(p); err != nil {
		reason, err := storeRejection(err)
		return Result{}, reason, err
	}
	if sc != nil {
		sc.readTexts()
		in.repeat.LearnRepeat(in.repeatOf(r, sc), sc.seriesOf)
	}
	return in.accepted(), "", nil
}

// accepted is the answer to an applied push: 200, or 202 when the
// consistency check is off, as the Pushgateway answers.
func (in *Ingester) accepted() Result {
	if in.cfg.DisableConsistencyCheck {
		return Result{Status: http.StatusAccepted}
	}
	return Result{Status: http.StatusOK}
}

// checkHead checks what a push says before its body: the path, the
// grouping labels' limits and the TTL header, in the Pushgateway's order.
// It returns the grouping labels.
func (in *Ingester) checkHead(r Parsed) (_ []store.Label, reason string, _ error) {
	if r.keyErr != nil {
		return nil, reasonPath, r.keyErr
	}
	ls := r.labels
	if ls == nil {
		ls = r.key.Labels()
	}
	if err := in.limits.checkKey(ls); err != nil {
		return nil, limitReason(err), err
	}
	if r.ttlErr != nil {
		return nil, reasonTTL, r.ttlErr
	}
	return ls, "", nil
}

// prepare turns a push request whose head checkHead accepted into a
// store.Push, or fails with the rejection reason; ls are its grouping
// labels. On success the caller calls release once the store is done
// with the push's families.
func (in *Ingester) prepare(r Parsed, ls []store.Label) (_ store.Push, release func(), reason string, _ error) {
	fams, release, n, err := decodeBody(r.Body, r.ContentType, r.ContentEncoding, in.cfg.MaxBodyBytes, in.cfg.UTF8Names, true)
	in.metrics.bodyBytes.Observe(float64(n))
	if err != nil {
		return store.Push{}, nil, bodyReason(err), err
	}
	sanitize(fams, ls)
	if err := in.limits.check(fams); err != nil {
		release()
		return store.Push{}, nil, limitReason(err), err
	}
	return store.Push{Key: r.key, Replace: r.Method == http.MethodPut, Families: fams, Time: in.now(), TTL: r.ttl}, release, "", nil
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
	var le *store.LimitError
	switch {
	case errors.Is(err, store.ErrInconsistent):
		if r := store.RejectReason(err); r == reasonTimestamp || r == reasonInvalid {
			return r, err
		}
		return reasonInconsistent, err
	case errors.As(err, &le):
		return le.Limit, err // the store's limit names are this package's reasons
	case errors.Is(err, store.ErrLimit):
		return reasonStoreLimit, err
	}
	return "", fmt.Errorf("apply push: %w", err)
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

// parsePath parses a push path with the label names --push.enable-utf8-names
// allows.
func (in *Ingester) parsePath(escapedPath string) (store.GroupKey, error) {
	if in.cfg.UTF8Names {
		return parseGroupingPath(escapedPath, true)
	}
	return ParseGroupingPath(escapedPath)
}

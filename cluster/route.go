package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
)

// ttlHeaderKey is ingest.TTLHeader as net/http stores it in a Header map.
var ttlHeaderKey = textproto.CanonicalMIMEHeaderKey(ingest.TTLHeader)

// Handle decides where a push or delete goes. It is applied here when it
// is refused before its body is read whichever peer takes it (its method,
// path or TTL header: the same answer as at an owner, without the hop), or
// when this peer is the first owner of its group that answers (always, for
// a cluster of one); the group's new state is then copied to its other
// owners. Otherwise it goes to that owner in one gRPC hop, and the owner's
// answer comes back: an owner that does not answer (unreachable, too slow,
// or failing fast after repeated timeouts) is passed over for the next
// owner, which applies the push as acting owner.
func (c *Cluster) Handle(ctx context.Context, r ingest.Request) (ingest.Result, error) {
	p := c.ing.Parse(r)
	key, ok := p.Key()
	if !ok {
		return c.ing.Apply(ctx, p)
	}
	pl := c.placement()
	if min(c.cfg.ReplicationFactor, pl.Len()) < 1 || pl.Owner(key.Hash()).ID == c.self {
		return c.applyAndReplicate(ctx, p) // ranked without allocating
	}
	owners := pl.Owners(key.Hash(), c.cfg.ReplicationFactor)
	body, err := readRaw(p, c.cfg.MaxBodyBytes)
	if err != nil || int64(len(body)) > c.cfg.MaxBodyBytes {
		// Broken off, or over the limit as received: the owner would refuse
		// it with 400 or 413, and which message (compressed or decompressed
		// size) depends on the body. The same decoding here gives the same
		// answer without shipping the body.
		rest := p.Body
		if err != nil {
			rest = errorReader{err}
		}
		p.Body = io.MultiReader(bytes.NewReader(body), rest)
		return c.ing.Apply(ctx, p)
	}
	var unavailable error
	for _, owner := range owners {
		if owner.ID == c.self {
			// The owners before this peer did not answer: it acts for them.
			p.Body = bytes.NewReader(body)
			return c.applyAndReplicate(ctx, p)
		}
		res, err := c.forward(ctx, owner, p, body)
		var ue *unavailableError
		if !errors.As(err, &ue) {
			return res, err
		}
		unavailable = err
	}
	c.ing.CountUnavailable()
	return ingest.Result{}, unavailable
}

// RemoteError is the answer of the owner of a forwarded push other than
// success: its status code, body and Retry-After, relayed to the pusher
// verbatim.
type RemoteError struct {
	Code       int
	Body       string
	RetryAfter int // seconds; 0: no Retry-After header
}

func (e *RemoteError) Error() string { return e.Body }

// HTTPStatus is the status the pusher gets.
func (e *RemoteError) HTTPStatus() int { return e.Code }

// RetryAfterSeconds is the Retry-After the pusher gets; 0: none.
func (e *RemoteError) RetryAfterSeconds() int { return e.RetryAfter }

// ErrOwnerUnavailable is wrapped by the error of a push whose owner did
// not answer (unreachable, too slow, or no known address): 503 with
// Retry-After.
var ErrOwnerUnavailable = errors.New("the peer that owns this group is unavailable")

// unavailableError is a push whose owner did not answer.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// HTTPStatus is 503: the push was fine, the owner may be back soon.
func (e *unavailableError) HTTPStatus() int { return http.StatusServiceUnavailable }

// RetryAfterSeconds asks the pusher to retry in a second: memberlist
// declares a dead owner within seconds, and its groups then go elsewhere.
func (e *unavailableError) RetryAfterSeconds() int { return 1 }

// forward sends p, whose body is body, to owner and returns the owner's
// answer. An owner that does not answer in time, or that failed so often
// of late that it is passed over, gives an *unavailableError.
func (c *Cluster) forward(ctx context.Context, owner shard.Member, p ingest.Parsed, body []byte) (ingest.Result, error) {
	release, err := c.breakers.acquire(owner.ID)
	if err != nil {
		return ingest.Result{}, c.unavailable(owner, err)
	}
	start := time.Now()
	client, err := c.conns.client(owner.GRPCAddr)
	if err != nil {
		release(false)
		return ingest.Result{}, c.unavailable(owner, err)
	}
	deadline := time.Now().Add(c.cfg.ForwardTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ctx = withApplyBy(ctx, deadline)
	resp, err := client.Push(ctx, &peerpb.PushRequest{
		Method:          p.Method,
		Path:            p.Path,
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		Body:            body,
		Ttl:             firstValue(p.Header[ttlHeaderKey]),
		OriginPeer:      c.self,
	})
	c.metrics.forwardSeconds.Observe(time.Since(start).Seconds())
	release(err == nil)
	if err != nil {
		return ingest.Result{}, c.unavailable(owner, err)
	}
	code := int(resp.GetStatusCode())
	if code >= 200 && code < 300 {
		c.metrics.forwarded.WithLabelValues(forwardOK).Inc()
		return ingest.Result{Status: code}, nil
	}
	// The owner counted the rejection under its reason.
	c.metrics.forwarded.WithLabelValues(forwardRefused).Inc()
	return ingest.Result{}, &RemoteError{Code: code, Body: resp.GetBody(), RetryAfter: int(resp.GetRetryAfterSeconds())}
}

// unavailable counts a push whose owner did not answer and describes it
// for the pusher.
func (c *Cluster) unavailable(owner shard.Member, err error) error {
	c.metrics.forwarded.WithLabelValues(forwardUnavailable).Inc()
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.DeadlineExceeded:
			err = fmt.Errorf("no answer within --%s=%s", flagForwardTimeout, c.cfg.ForwardTimeout)
		case codes.Canceled:
			err = errors.New("the request was cancelled")
		default:
			err = errors.New(s.Message())
		}
	}
	return &unavailableError{fmt.Errorf("%w: peer %q: %v; retry later", ErrOwnerUnavailable, owner.ID, err)}
}

// readRaw returns the body to forward. A body the api already read (an
// *ingest.Body, decompressed under the limit) is handed over without a
// copy; any other is read as it came, compressed or not, stopping after
// max + 1 bytes: a body that long is refused by the owner whatever its
// encoding (the compressed size is held to the same limit), so it is not
// forwarded.
func readRaw(p ingest.Parsed, max int64) ([]byte, error) {
	if p.Method == http.MethodDelete || p.Body == nil {
		return nil, nil // the body of a DELETE is ignored
	}
	if b, ok := p.Body.(*ingest.Body); ok {
		return b.Bytes()
	}
	return io.ReadAll(io.LimitReader(p.Body, max+1))
}

// errorReader fails every read with err: the rest of a body whose reading
// broke off.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// applyByKey is the gRPC metadata key of a forwarded push's deadline as a
// wall-clock time (Unix nanoseconds). gRPC sends a deadline as a duration
// that the receiver counts from when it reads the request: an owner
// stopped (SIGSTOP, a long pause) with a forwarded push in its socket
// would start a fresh timeout on resuming and apply a push the forwarder
// gave up on and sent to the next owner, with a version newer than that
// retry's, so its old values would win everywhere. The owner applies a
// forwarded push only before this time (applyBy).
const applyByKey = "pushring-apply-by"

// applyBySkew is how far an owner's clock may run behind the forwarder's
// while the owner still never applies a push after the forwarder gave
// up: the deadline is moved this much earlier. (An owner's clock ahead by
// nearly the forward timeout would refuse pushes in time.) Versions
// already assume clocks that agree much better.
const applyBySkew = 100 * time.Millisecond

// withApplyBy adds the forward deadline to the outgoing metadata.
func withApplyBy(ctx context.Context, deadline time.Time) context.Context {
	return metadata.AppendToOutgoingContext(ctx, applyByKey, strconv.FormatInt(deadline.UnixNano(), 10))
}

// applyBy returns the context a forwarded push is applied in: ctx, ending
// at the forwarder's deadline less applyBySkew if the forwarder sent one.
func applyBy(ctx context.Context) (context.Context, context.CancelFunc) {
	vs := metadata.ValueFromIncomingContext(ctx, applyByKey)
	if len(vs) != 1 {
		return ctx, func() {}
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, time.Unix(0, n).Add(-applyBySkew))
}

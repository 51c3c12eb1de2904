package loadtest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// router picks the peer each push goes to among the endpoints in service,
// the way a Kubernetes Service routes only to the endpoints its endpoints
// controller lists as ready. The harness takes a peer out of service the
// moment it kills it and puts it back once it answers /-/ready again, so a
// push is never sent to a peer the harness knows is down; only the pushes
// already on their way when it is killed can meet it dead.
type router struct {
	route Route
	eps   []*endpoint
}

// endpoint is one peer as the router sees it. state packs the number of
// times the harness killed the peer (state>>1) with whether it is in
// service (bit 0), so a push reads both at once when it picks the peer and
// can later tell whether its peer was killed under it.
type endpoint struct {
	base     atomic.Pointer[url.URL]
	state    atomic.Uint64
	inflight atomic.Int64 // pushes sent to it and not yet answered
}

const inService = 1

// newRouter builds a router over urls, all in service.
func newRouter(route Route, urls []string) (*router, error) {
	r := &router{route: route}
	for _, raw := range urls {
		e := &endpoint{}
		if err := e.setBase(raw); err != nil {
			return nil, err
		}
		e.state.Store(inService)
		r.eps = append(r.eps, e)
	}
	return r, nil
}

// setBase points the endpoint at a push base URL; without a scheme it is
// http://, as push.New assumes.
func (e *endpoint) setBase(raw string) error {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return fmt.Errorf("push URL %q: %w", raw, err)
	}
	e.base.Store(u)
	return nil
}

// takeOut removes the endpoint from service and counts a kill; pushes
// picked before it see the count change.
func (e *endpoint) takeOut() { e.state.Store((e.state.Load()>>1 + 1) << 1) }

// putBack returns the endpoint to service.
func (e *endpoint) putBack() { e.state.Store(e.state.Load() | inService) }

// killedSince reports whether the peer was killed after a push read state.
func (e *endpoint) killedSince(state uint64) bool { return e.state.Load()>>1 != state>>1 }

// pick returns the endpoint for a push of node home and the state it saw:
// with RouteNode the node's own peer while it is in service, else (and
// always with RouteRandom) one of the endpoints in service, uniformly.
// When none is, the push goes to the node's own peer and fails there, as
// it would for a pusher.
func (r *router) pick(home int) (*endpoint, uint64) {
	own := r.eps[home%len(r.eps)]
	if s := own.state.Load(); r.route == RouteNode && s&inService != 0 {
		return own, s
	}
	states := make([]uint64, len(r.eps))
	live := 0
	for i, e := range r.eps {
		states[i] = e.state.Load()
		if states[i]&inService != 0 {
			live++
		}
	}
	if live == 0 {
		return own, own.state.Load()
	}
	k := rand.IntN(live) // routing needs no reproducible seed: any live peer must do
	for i, s := range states {
		if s&inService == 0 {
			continue
		}
		if k == 0 {
			return r.eps[i], s
		}
		k--
	}
	return own, own.state.Load() // not reached: live counted the endpoints in service
}

// aim rewrites a push request built for any peer's base URL to go to e:
// the part from /metrics/job/ on is kept, base path prefixes are replaced.
func (e *endpoint) aim(req *http.Request) error {
	path := req.URL.EscapedPath()
	i := strings.Index(path, "/metrics/job/")
	if i < 0 {
		return fmt.Errorf("push URL %s has no /metrics/job/", req.URL)
	}
	u, err := url.Parse(e.base.Load().String() + path[i:])
	if err != nil {
		return fmt.Errorf("aim push at %s: %w", e.base.Load(), err)
	}
	u.RawQuery = req.URL.RawQuery
	req.URL, req.Host = u, u.Host
	return nil
}

// KilledError is a push that was on its way to a peer when the harness
// killed that peer: it fails however the target is built, and is counted
// apart from the failures the target chose (ClassKilled).
type KilledError struct {
	Peer string
	Err  error
}

func (e *KilledError) Error() string {
	return fmt.Sprintf("in flight to %s when it was killed: %v", e.Peer, e.Err)
}

func (e *KilledError) Unwrap() error { return e.Err }

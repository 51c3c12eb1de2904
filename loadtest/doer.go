package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// maxErrorBody caps how much of a rejected push's answer is kept for the
// error message; the rest is drained so the connection can be reused.
const maxErrorBody = 512

// StatusError is a push answered with a status other than 200 or 202, the two
// codes client_golang's push package accepts.
type StatusError struct {
	Code       int
	Body       string
	RetryAfter string // the answer's Retry-After header, "" when it had none
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("push answered %d: %s", e.Code, e.Body)
}

// doer is the push.HTTPDoer of one node. It sends each push to the peer
// its router picks, counts request bytes, and turns an unwanted status
// into a *StatusError: client_golang returns a Doer's error unchanged,
// while its own status error is only a string.
type doer struct {
	client *http.Client
	sent   *atomic.Uint64
	router *router
	home   int // the node's index, its own peer with RouteNode
}

// Do sends req; the caller owns the response only when err is nil.
func (d doer) Do(req *http.Request) (*http.Response, error) {
	e, state := d.router.pick(d.home)
	if err := e.aim(req); err != nil {
		return nil, err
	}
	if req.ContentLength > 0 {
		d.sent.Add(uint64(req.ContentLength))
	}
	e.inflight.Add(1)
	resp, err := d.client.Do(req)
	e.inflight.Add(-1)
	if err != nil {
		if e.killedSince(state) {
			return nil, &KilledError{Peer: req.URL.Host, Err: err}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, resp.Body) // drain so keep-alive survives; a failure only costs the connection
	return nil, &StatusError{Code: resp.StatusCode, Body: string(body), RetryAfter: resp.Header.Get("Retry-After")}
}

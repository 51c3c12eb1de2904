package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/pushring/pushring/ingest"
)

// push serves PUT, POST and DELETE under <prefix>/metrics/job...: the body
// is read first, outside admission (body.go), so a slow client holds its
// own connection and nothing else; then, once admission control grants a
// slot, the pusher applies it here or on the peer that owns its group. A
// success is its status with an empty body. Every answer is counted by
// method and status, on the peer that took the request.
func (a *API) push(w http.ResponseWriter, r *http.Request) error {
	res, err := a.handlePush(w, r)
	a.metrics.push(methodLabel(r.Method), statusCode(statusOf(err))).Inc()
	if err != nil {
		return err
	}
	w.WriteHeader(res.Status)
	return nil
}

// handlePush reads the body, admits the push and hands it to the pusher.
// The body reaches the pusher decompressed, so the request says it has no
// Content-Encoding.
func (a *API) handlePush(w http.ResponseWriter, r *http.Request) (ingest.Result, error) {
	req := ingest.Request{
		Method:          r.Method,
		Path:            groupingPath(r.URL.EscapedPath(), a.prefix),
		ContentType:     r.Header.Get("Content-Type"),
		ContentEncoding: r.Header.Get("Content-Encoding"),
		Body:            r.Body,
		Header:          r.Header,
	}
	var body *ingest.Body
	if r.Method != http.MethodDelete { // a DELETE's body is ignored
		b, c, err := a.bodies.read(w, r)
		if err != nil {
			a.ingester.CountRefused(refusalReason(err))
			return ingest.Result{}, err
		}
		defer c.release()
		body = b
		req.Body, req.ContentEncoding = b, ""
	}
	if ad, ok := a.pusher.(selfAdmitting); !ok || !ad.Admits() {
		if err := a.admit.Acquire(r.Context()); err != nil {
			a.ingester.CountOverloaded()
			return ingest.Result{}, err
		}
		defer a.admit.Release()
	}
	res, err := a.pusher.Handle(r.Context(), req)
	if err == nil && body != nil {
		// Nothing refers to the body of a push that was applied or
		// forwarded (Pusher). A refusal's error may quote it and is
		// written after this returns, so its buffer is left to the
		// collector.
		body.Release()
	}
	return res, err
}

// selfAdmitting is a Pusher that takes the admission slots itself, for the
// pushes it applies on this peer (the cluster: a push it forwards to
// another peer holds no slot here while it waits).
type selfAdmitting interface {
	Admits() bool
}

// groupingPath returns the escaped path after "<prefix>/metrics", e.g.
// "/job/x/a/b". It skips segments rather than trimming the prefix string:
// the mux matched the prefix on decoded segments, so a client may have
// escaped characters of the prefix differently from us.
func groupingPath(escaped, prefix string) string {
	skip := strings.Count(prefix, "/") + 1 // the prefix's segments and "metrics"
	p := escaped
	for range skip {
		i := strings.IndexByte(p[min(1, len(p)):], '/')
		if i < 0 {
			return ""
		}
		p = p[i+1:]
	}
	return p
}

// refusalReason is the reason a push refused while its body was read is
// counted under.
func refusalReason(err error) string {
	var be *budgetError
	var te *bodyTimeoutError
	switch {
	case errors.As(err, &be):
		return ingest.ReasonMemoryBudget
	case errors.As(err, &te):
		return ingest.ReasonBodyTimeout
	}
	return ingest.ReasonBody
}

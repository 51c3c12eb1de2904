package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/pushring/pushring/ingest"
)

// push serves PUT, POST and DELETE under <prefix>/metrics/job...: once
// admission control grants a slot, the pusher applies it here or on the
// peer that owns its group; a success is its status with an empty body.
// Every answer is counted by method and status, on the peer that took the
// request.
func (a *API) push(w http.ResponseWriter, r *http.Request) error {
	res, err := a.handlePush(r)
	a.metrics.pushes.WithLabelValues(methodLabel(r.Method), strconv.Itoa(statusOf(err))).Inc()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(res.Status)
	return nil
}

// handlePush admits a push and hands it to the pusher.
func (a *API) handlePush(r *http.Request) (ingest.Result, error) {
	if err := a.admit.Acquire(r.Context()); err != nil {
		a.ingester.CountOverloaded()
		return ingest.Result{}, err
	}
	defer a.admit.Release()
	return a.pusher.Handle(r.Context(), ingest.Request{
		Method:          r.Method,
		Path:            groupingPath(r.URL.EscapedPath(), a.prefix),
		ContentType:     r.Header.Get("Content-Type"),
		ContentEncoding: r.Header.Get("Content-Encoding"),
		Body:            r.Body,
		Header:          r.Header,
	})
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

package api

import (
	"net/http"
	"strings"

	"github.com/pushring/pushring/ingest"
)

// push serves PUT, POST and DELETE under <prefix>/metrics/job...: once
// admission control grants a slot, the ingester parses, validates and
// applies; a success is its status with an empty body.
func (a *API) push(w http.ResponseWriter, r *http.Request) error {
	if err := a.admit.acquire(r.Context()); err != nil {
		a.ingester.CountOverloaded()
		return err
	}
	defer a.admit.release()
	res, err := a.ingester.Handle(r.Context(), ingest.Request{
		Method:          r.Method,
		Path:            groupingPath(r.URL.EscapedPath(), a.prefix),
		ContentType:     r.Header.Get("Content-Type"),
		ContentEncoding: r.Header.Get("Content-Encoding"),
		Body:            r.Body,
		Header:          r.Header,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(res.Status)
	return nil
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

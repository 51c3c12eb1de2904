package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Content types of the scrape formats the peer endpoint serves.
const (
	contentTypeText        = "text/plain; version=0.0.4; charset=utf-8"
	contentTypeProtoDelim  = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
	contentTypeOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// scrape serves <prefix><telemetry-path>: the pushed groups merged with the
// gateway's own families, in the negotiated format, gzipped when accepted.
func (a *API) scrape(w http.ResponseWriter, r *http.Request) error {
	n := Negotiate(r.Header, a.cfg.PreferOpenMetrics)
	format, contentType := n.Format, n.ContentType()
	own, err := a.own.Gather()
	if err != nil {
		return &scrapeError{err: err, contentType: n.errorContentType()}
	}
	w.Header().Set("Content-Type", contentType)

	out := &countingWriter{w: w}
	write := a.store.WriteExposition
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		// The store compresses, keeping what it compressed for the next
		// scrape.
		write = a.store.WriteExpositionGzip
		w.Header().Set("Content-Encoding", "gzip")
	}
	if err := write(out, format, own); err != nil {
		if out.n == 0 {
			w.Header().Del("Content-Encoding")
			return &scrapeError{err: err, contentType: n.errorContentType()}
		}
		return wrapf(errAbort, "write exposition: %v", err)
	}
	return nil
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip:
// listed (or matched by "*") with a non-zero quality. An explicit gzip
// entry takes precedence over "*".
func acceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		ok := qualityOf(params) > 0
		if coding == "gzip" {
			return ok
		}
		star = ok
	}
	return star
}

// qualityOf returns the q parameter of an Accept-Encoding entry's
// parameters, 1 when absent and 0 when malformed.
func qualityOf(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return 0
			}
			return q
		}
	}
	return 1
}

// countingWriter counts the bytes written through it, so a failure before
// the first byte can still be answered with a proper 500.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil // an empty write would still commit the 200 header
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

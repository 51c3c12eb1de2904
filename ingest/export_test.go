package ingest

import (
	"io"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// DecodeBody is decodeBody without the byte count, legacy names only, for
// the tests, fuzz targets and benchmarks of the decoder.
func DecodeBody(body io.Reader, contentType, contentEncoding string, maxBytes int64) (map[string]*dto.MetricFamily, error) {
	fams, _, _, err := decodeBody(body, contentType, contentEncoding, maxBytes, false, false)
	return fams, err
}

// Sanitize is sanitize given the grouping key, for tests and benchmarks.
func Sanitize(fams map[string]*dto.MetricFamily, key store.GroupKey) {
	sanitize(fams, key.Labels())
}

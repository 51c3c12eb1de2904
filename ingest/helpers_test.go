package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// fmtProtoDelim is the format and Content-Type client_golang's push package
// uses by default.
var fmtProtoDelim = expfmt.NewFormat(expfmt.TypeProtoDelim)

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

// parseText parses text 0.0.4 with expfmt directly: the reference the
// decoder's output is compared with.
func parseText(tb testing.TB, text string) map[string]*dto.MetricFamily {
	tb.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(tb, err)
	return fams
}

// encodeDelimited encodes families the way client_golang's push package
// does: an expfmt encoder for FmtProtoDelim, one family after another in
// name order.
func encodeDelimited(tb testing.TB, fams ...*dto.MetricFamily) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, fmtProtoDelim)
	for _, mf := range fams {
		require.NoError(tb, enc.Encode(mf))
	}
	return buf.Bytes()
}

// sortedFamilies returns the families of a map in name order.
func sortedFamilies(fams map[string]*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, mf := range fams {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

func snappyBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	sw := snappy.NewBufferedWriter(&buf)
	_, err := sw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, sw.Close())
	return buf.Bytes()
}

// kindsByStatus is, per HTTP status the api answers, the sentinels an
// error of this package wraps to get it: the contract between this
// package and the api's one status mapper.
var kindsByStatus = map[int][]error{
	http.StatusBadRequest:            {ErrBadRequest, store.ErrInconsistent},
	http.StatusNotFound:              {ErrNotFound},
	http.StatusMethodNotAllowed:      {ErrMethodNotAllowed},
	http.StatusRequestEntityTooLarge: {ErrTooLarge},
	http.StatusTooManyRequests:       {store.ErrLimit},
	http.StatusServiceUnavailable:    {ErrOverloaded},
}

// statusOf is the status the api answers err with, by the sentinel it
// wraps; 500 when it wraps none.
func statusOf(err error) int {
	for _, code := range []int{503, 429, 404, 413, 405, 400} { // api.pushStatus's order
		for _, k := range kindsByStatus[code] {
			if errors.Is(err, k) {
				return code
			}
		}
	}
	return http.StatusInternalServerError
}

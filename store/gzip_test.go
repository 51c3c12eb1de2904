package store

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// gunzipOne decodes b, which must be exactly one gzip member (what a
// reader that does not take concatenated members reads), and returns the
// content.
func gunzipOne(t *testing.T, b []byte) []byte {
	t.Helper()
	r := bytes.NewReader(b)
	zr, err := gzip.NewReader(r)
	require.NoError(t, err)
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	require.NoError(t, err, "the member decodes and its CRC-32 and size check")
	require.Zero(t, r.Len(), "nothing follows the one member")
	return out
}

// ownFamily is a gateway family written among the stored ones.
func ownFamily() *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String("edge_cpu_seconds_total"), Help: proto.String("Own help."), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(3)}}},
	}
}

// A gzipped scrape decodes to the plain scrape, in every format and
// escaping, the first time (segments compressed and kept) and again
// (segments copied), and after groups change.
func TestWriteExpositionGzip(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fillBench(t, s, 30)
	utf8Push := Push{Key: NewGroupKey(map[string]string{"job": "utf8"}), Replace: true, Time: time.Unix(1_700_000_000, 0),
		Families: map[string]*dto.MetricFamily{"a.b": {Name: proto.String("a.b"), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("job"), Value: proto.String("utf8")}, {Name: proto.String("instance"), Value: proto.String("")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}}}
	require.NoError(t, s.Apply(utf8Push))
	formats := []Format{FormatText, FormatProtoDelim, FormatOpenMetrics, FormatText.WithEscaping(model.UnderscoreEscaping)}
	check := func(when string) {
		for _, f := range formats {
			var plain, zipped bytes.Buffer
			require.NoError(t, s.WriteExposition(&plain, f, []*dto.MetricFamily{ownFamily()}))
			require.NoError(t, s.WriteExpositionGzip(&zipped, f, []*dto.MetricFamily{ownFamily()}))
			require.Equal(t, plain.String(), string(gunzipOne(t, zipped.Bytes())), "%s, %s", f, when)
		}
	}
	check("first scrape")
	require.Positive(t, s.cache.bytes(), "the text segments are kept")
	check("segments kept")
	changed := benchPush(3, time.Unix(1_700_000_100, 0))
	for _, mf := range changed.Families {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				*m.Counter.Value++
			} else {
				*m.Gauge.Value--
			}
		}
	}
	require.NoError(t, s.Apply(changed))
	check("after a push with new values")
	require.True(t, s.Delete(NewGroupKey(map[string]string{"job": "edgecore", "instance": "edge-node-00004"})))
	check("after a delete")
}

// An empty store gzips to a valid empty member; the kept segments give
// their room back when families leave; past the cache's bound a scrape
// compresses without keeping.
func TestWriteExpositionGzipCache(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	var empty bytes.Buffer
	require.NoError(t, s.WriteExpositionGzip(&empty, FormatText, nil))
	require.Empty(t, gunzipOne(t, empty.Bytes()))

	fillBench(t, s, 200)
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	full := s.cache.bytes()
	require.Positive(t, full)
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	require.Equal(t, full, s.cache.bytes(), "an unchanged store keeps the same chunks")
	for i := range 100 {
		require.True(t, s.Delete(NewGroupKey(map[string]string{"job": "edgecore", "instance": fmt.Sprintf("edge-node-%05d", i)})))
	}
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	require.Less(t, s.cache.bytes(), full, "the chunks of deleted groups are given back at the next scrape")
	s.Wipe()
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	require.Zero(t, s.cache.bytes(), "a wiped store's chunks are given back at the next scrape")

	small, err := New(Config{MaxRenderCacheBytes: 2 << 10}, nil, nil)
	require.NoError(t, err)
	fillBench(t, small, 20)
	var want, got bytes.Buffer
	require.NoError(t, small.WriteExposition(&want, FormatText, nil))
	require.NoError(t, small.WriteExpositionGzip(&got, FormatText, nil))
	require.Equal(t, want.String(), string(gunzipOne(t, got.Bytes())))
	require.LessOrEqual(t, small.cache.bytes(), int64(2<<10))
}

// A gzipped scrape in another format keeps the text chunks for the next
// text scrape: only text scrapes build the table.
func TestWriteExpositionGzipOtherFormatsKeepChunks(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fillBench(t, s, 50)
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	chunks, bytes := s.gzChunks.Load().len(), s.gzChunks.Load().bytes
	require.Positive(t, chunks)
	for _, f := range []Format{FormatOpenMetrics, FormatProtoDelim} {
		require.NoError(t, s.WriteExpositionGzip(io.Discard, f, nil))
		require.Equal(t, chunks, s.gzChunks.Load().len(), f.String())
		require.Equal(t, bytes, s.gzChunks.Load().bytes, f.String())
	}
}

// dropGzipSegments forgets every kept chunk, so the next gzipped scrape
// compresses everything again. No scrape may run meanwhile.
func (s *Store) dropGzipSegments() {
	if old := s.gzChunks.Swap(nil); old != nil {
		s.cache.used.Add(-old.bytes)
	}
}

// Gzipped scrapes beside each other and beside pushes: each answer is a
// valid member (its CRC-32 and size check), and when they are done the
// render cache counts exactly the chunks of the table.
func TestWriteExpositionGzipConcurrent(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fillBench(t, s, 100)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for range 20 {
				var b bytes.Buffer
				if !assert.NoError(t, s.WriteExpositionGzip(&b, FormatText, nil)) {
					return
				}
				zr, err := gzip.NewReader(&b)
				if assert.NoError(t, err) {
					_, err = io.Copy(io.Discard, zr)
					assert.NoError(t, err, "scraper %d", w)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			assert.NoError(t, s.Apply(benchPush(i%100, time.Unix(1_700_000_000+int64(i), 0))))
		}
	})
	wg.Wait()
	require.NoError(t, s.WriteExpositionGzip(io.Discard, FormatText, nil))
	require.Equal(t, s.gzChunks.Load().bytes, s.cache.bytes())
}

// A family of 4 GiB or more does not fit its slot's size; the scrape then
// reads the size from the family. Simulated here by marking every slot so.
func TestWriteExpositionGzipSaturatedSizes(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fillBench(t, s, 30)
	s.mu.Lock()
	for _, e := range s.names {
		for _, sl := range e.slots {
			sl.size = maxMemberSize
		}
	}
	s.mu.Unlock()
	for range 2 { // compressed, then kept
		var plain, zipped bytes.Buffer
		require.NoError(t, s.WriteExposition(&plain, FormatText, nil))
		require.NoError(t, s.WriteExpositionGzip(&zipped, FormatText, nil))
		require.Equal(t, plain.String(), string(gunzipOne(t, zipped.Bytes())))
	}
}

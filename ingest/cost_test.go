package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pushring/pushring/store"
)

// costShape is a push body of one family: series metrics with the labels
// a (value bytes long) and b, as gauges, histograms of four buckets,
// summaries of three quantiles, or counters. In protobuf, counters carry
// a created timestamp and an exemplar, as client_golang pushes them with
// exemplars: a family the store keeps protobuf bytes of from the start.
type costShape struct {
	name          string
	series, value int
	kind          dto.MetricType
}

func (c costShape) text() string {
	var sb strings.Builder
	v := strings.Repeat("v", c.value)
	switch c.kind {
	case dto.MetricType_HISTOGRAM:
		sb.WriteString("# TYPE cost histogram\n")
		for i := range c.series {
			for _, le := range []string{"0.1", "1", "10", "+Inf"} {
				fmt.Fprintf(&sb, "cost_bucket{a=\"%s\",b=\"%d\",le=\"%s\"} %d\n", v, i, le, i)
			}
			fmt.Fprintf(&sb, "cost_sum{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
			fmt.Fprintf(&sb, "cost_count{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
		}
	case dto.MetricType_SUMMARY:
		sb.WriteString("# TYPE cost summary\n")
		for i := range c.series {
			for _, q := range []string{"0.5", "0.9", "0.99"} {
				fmt.Fprintf(&sb, "cost{a=\"%s\",b=\"%d\",quantile=\"%s\"} %d\n", v, i, q, i)
			}
			fmt.Fprintf(&sb, "cost_sum{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
			fmt.Fprintf(&sb, "cost_count{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
		}
	default:
		fmt.Fprintf(&sb, "# TYPE cost %s\n", strings.ToLower(c.kind.String()))
		for i := range c.series {
			fmt.Fprintf(&sb, "cost{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
		}
	}
	return sb.String()
}

// protobuf is the body of c as client_golang's delimited protobuf.
func (c costShape) protobuf(t *testing.T) []byte {
	mfs := sortedFamilies(parseText(t, c.text()))
	if c.kind == dto.MetricType_COUNTER {
		for _, m := range mfs[0].Metric {
			m.Counter.CreatedTimestamp = timestamppb.New(time.Unix(1_700_000_000, 123_456_789))
			m.Counter.Exemplar = &dto.Exemplar{
				Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String("0123456789abcdef")}},
				Value: m.Counter.Value, Timestamp: timestamppb.New(time.Unix(1_700_000_000, 5)),
			}
		}
	}
	return encodeDelimited(t, mfs...)
}

// costShapes are the pushes DecodeCost is checked against: many short
// series, the 16 MB push of 49,000 series with 300-byte label values,
// histograms and summaries with short and long label values (a protobuf
// body carries a metric's labels once, its text on every line), and
// counters the store keeps protobuf bytes of.
var costShapes = []costShape{
	{name: "short labels", series: 40_000, value: 8, kind: dto.MetricType_GAUGE},
	{name: "300-byte labels", series: 49_000, value: 300, kind: dto.MetricType_GAUGE},
	{name: "histograms", series: 4_000, value: 8, kind: dto.MetricType_HISTOGRAM},
	{name: "histograms with 300-byte labels", series: 4_000, value: 300, kind: dto.MetricType_HISTOGRAM},
	{name: "summaries", series: 8_000, value: 8, kind: dto.MetricType_SUMMARY},
	{name: "summaries with 100-byte labels", series: 8_000, value: 100, kind: dto.MetricType_SUMMARY},
	{name: "counters with exemplars", series: 40_000, value: 8, kind: dto.MetricType_COUNTER},
	{name: "counters with exemplars, 300-byte labels", series: 20_000, value: 300, kind: dto.MetricType_COUNTER},
}

// pushAllocates returns the bytes of heap that Handle allocates to decode
// and apply body into an empty real store: what the push holds at its
// height if no collection runs meanwhile, beyond the body's own buffer.
func pushAllocates(t *testing.T, body []byte, contentType string) (allocated int64, b *Body) {
	t.Helper()
	st := newRealStore(t, store.Config{})
	in, _ := newTestIngester(t, DefaultConfig(), st)
	b, err := ReadBody(bytes.NewReader(body), "", 0, -1, func(int64) error { return nil })
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/cost", ContentType: contentType, Body: b})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	runtime.KeepAlive(st)
	return int64(after.TotalAlloc - before.TotalAlloc), b
}

// The budget's charge for decoding and applying a push covers what the
// push really allocates, for text and protobuf bodies of every shape, and
// does not overcharge by more than half (which would refuse pushes the
// budget has room for). The race detector makes the pushes allocate more
// than they do in a normal build, so .ci/run runs this test once more
// without it.
func TestDecodeCostCoversPush(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not a normal build's; .ci/run runs this test without -race")
	}
	for _, sh := range costShapes {
		text := sh.text()
		for _, f := range []struct {
			name, contentType string
			body              []byte
		}{{"text", "", []byte(text)}, {"protobuf", string(fmtProtoDelim), sh.protobuf(t)}} {
			t.Run(sh.name+"/"+f.name, func(t *testing.T) {
				allocated, b := pushAllocates(t, f.body, f.contentType)
				charged := DecodeCost(b, f.contentType)
				lines := strings.Count(text, "\n") - 1
				t.Logf("%d-byte body, %d sample lines: allocated %d (%d per line), charged %d (%.2f×)",
					len(f.body), lines, allocated, allocated/int64(lines), charged, float64(charged)/float64(allocated))
				assert.GreaterOrEqual(t, charged, allocated, "the charge covers the push")
				assert.LessOrEqual(t, charged, allocated*3/2, "the charge is not far above the push")
			})
		}
	}
}

// protoItems counts the messages of a body without decoding it.
func TestProtoItems(t *testing.T) {
	mfs := sortedFamilies(parseText(t, `# TYPE g gauge
g{a="1",b="2"} 1
g{a="2"} 2
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="+Inf"} 2
h_sum 3
h_count 2
`))
	body := encodeDelimited(t, mfs...)
	// g: 2 metrics, 3 label pairs, 2 gauges; h: 1 metric, 1 histogram, 2 buckets.
	c := protoItems(body)
	require.Equal(t, 2+3+2+1+1+2, c.items)
	require.Zero(t, c.repeated, "h has no labels")
	require.Zero(t, c.eager, "no exemplars")
	require.Equal(t, 2+3+2, protoItems(body[:len(body)-1]).items, "a broken family counts what parses before it")
	extra := &dto.MetricFamily{Name: proto.String("x")}
	require.Equal(t, 0, protoItems(encodeDelimited(t, extra)).items)

	// A histogram's labels are on each of its text lines: its two
	// buckets, _sum and _count, once in the body.
	mfs = sortedFamilies(parseText(t, `# TYPE h histogram
h_bucket{a="xyz",le="1"} 1
h_bucket{a="xyz",le="+Inf"} 2
h_sum{a="xyz"} 3
h_count{a="xyz"} 2
`))
	pair := len(protowire.AppendString(protowire.AppendTag(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "a"), 2, protowire.BytesType), "xyz"))
	require.Equal(t, pair*(2+1), protoItems(encodeDelimited(t, mfs...)).repeated)

	// A counter with an exemplar: the exemplar, its label and timestamp
	// and the counter's created timestamp count, and the metric is kept
	// as protobuf too.
	withExemplar := costShape{series: 1, value: 3, kind: dto.MetricType_COUNTER}.protobuf(t)
	c = protoItems(withExemplar)
	require.Equal(t, 1+2+1+1+1+1+1, c.items, "metric, 2 label pairs, counter, exemplar, its label and timestamp, created")
	require.Positive(t, c.eager)
	require.Less(t, c.eager, len(withExemplar))
}

// bytesFieldsByProtowire is bytesFields as protowire alone reads it, a
// field at a time.
func bytesFieldsByProtowire(m []byte, fn func(num protowire.Number, v []byte)) {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeField(m)
		if n < 0 {
			return
		}
		if typ == protowire.BytesType {
			_, tag := protowire.ConsumeVarint(m)
			v, _ := protowire.ConsumeBytes(m[tag:n])
			fn(num, v)
		}
		m = m[n:]
	}
}

// requireBytesFieldsByProtowire requires bytesFields to call back with
// the fields, and stop where, protowire alone does.
func requireBytesFieldsByProtowire(t *testing.T, m []byte) {
	t.Helper()
	type call struct {
		num protowire.Number
		v   string
	}
	var got, want []call
	bytesFields(m, func(num protowire.Number, v []byte) { got = append(got, call{num, string(v)}) })
	bytesFieldsByProtowire(m, func(num protowire.Number, v []byte) { want = append(want, call{num, string(v)}) })
	require.Equal(t, want, got, "% x", m)
}

// TestBytesFieldsIsProtowire checks bytesFields' one-byte fast path on
// the messages of a real push and on the edges of its conditions.
func TestBytesFieldsIsProtowire(t *testing.T) {
	body := encodeDelimited(t, sortedFamilies(parseText(t, string(readTestdata(t, "node.prom"))))...)
	for rest := body; len(rest) > 0; {
		size, w := protowire.ConsumeVarint(rest)
		require.Positive(t, w)
		family := rest[w : w+int(size)]
		requireBytesFieldsByProtowire(t, family)
		bytesFields(family, func(_ protowire.Number, v []byte) { requireBytesFieldsByProtowire(t, v) })
		rest = rest[w+int(size):]
	}
	for _, m := range bytesFieldsEdges {
		requireBytesFieldsByProtowire(t, m)
	}
}

// bytesFieldsEdges are messages at the edges of bytesFields' fast path.
var bytesFieldsEdges = [][]byte{
	{},
	{0x0a},                               // a tag without its length
	{0x0a, 0x00},                         // an empty field 1
	{0x0a, 0x03, 'a', 'b'},               // a length past the end
	{0x0a, 0x02, 'a', 'b', 0x12},         // then a cut tag
	{0x7a, 0x01, 'z', 0x12, 0x00},        // field 15, then 2
	{0x82, 0x01, 0x01, 'x'},              // field 16: a two-byte tag
	{0x0a, 0x80, 0x01},                   // a two-byte length, cut
	{0x08, 0x96, 0x01, 0x12, 0x01, 'y'},  // a two-byte varint
	{0x08, 0x7f, 0x12, 0x01, 'y'},        // a one-byte varint
	{0x02, 0x01, 'x'},                    // field 0
	{0x0d, 1, 2, 3, 4, 0x12, 0x01, 'y'},  // a fixed32
	{0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x12}, // a fixed64, then a cut tag
	{0x0b, 0x0c, 0x12, 0x01, 'y'},        // a group, as protowire skips it
	{0x0e, 0x01},                         // wire type 6
}

func FuzzBytesFields(f *testing.F) {
	for _, m := range bytesFieldsEdges {
		f.Add(m)
	}
	f.Fuzz(requireBytesFieldsByProtowire)
}

// countBucketLabelsEdges are bodies at the edges of countBucketLabels.
var countBucketLabelsEdges = []string{
	"", "=", `="`, `e="`, `le="`, `le=`, `le="le="`, `xle="`, `le=""le="`,
	`l e="`, `==le="`, `le=="`, `le="=`,
	"h_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
	"s{quantile=\"0.5\"} 1\ns{handle=\"x\"} 2\n",
	"# HELP x counts le=\" in HELP\nx{a=\"le=\\\"\"} 1\n",
}

// TestCountBucketLabelsIsBytesCount holds countBucketLabels to the count
// it replaces.
func TestCountBucketLabelsIsBytesCount(t *testing.T) {
	bodies := append([]string{string(readTestdata(t, "node.prom"))}, countBucketLabelsEdges...)
	for _, body := range bodies {
		require.Equal(t, bytes.Count([]byte(body), []byte(`le="`)), countBucketLabels([]byte(body)), "%q", body)
	}
}

func FuzzCountBucketLabels(f *testing.F) {
	for _, body := range countBucketLabelsEdges {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		require.Equal(t, bytes.Count(body, []byte(`le="`)), countBucketLabels(body), "%q", body)
	})
}

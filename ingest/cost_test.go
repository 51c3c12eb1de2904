package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// costShape is a push body of one family: series series with the labels
// a (value bytes long) and b, as gauges or as histograms of four buckets.
type costShape struct {
	name          string
	series, value int
	histogram     bool
}

func (c costShape) text() string {
	var sb strings.Builder
	v := strings.Repeat("v", c.value)
	if !c.histogram {
		sb.WriteString("# TYPE cost gauge\n")
		for i := range c.series {
			fmt.Fprintf(&sb, "cost{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
		}
		return sb.String()
	}
	sb.WriteString("# TYPE cost histogram\n")
	for i := range c.series {
		for _, le := range []string{"0.1", "1", "10", "+Inf"} {
			fmt.Fprintf(&sb, "cost_bucket{a=\"%s\",b=\"%d\",le=\"%s\"} %d\n", v, i, le, i)
		}
		fmt.Fprintf(&sb, "cost_sum{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
		fmt.Fprintf(&sb, "cost_count{a=\"%s\",b=\"%d\"} %d\n", v, i, i)
	}
	return sb.String()
}

// costShapes are the pushes DecodeCost is checked against: many short
// series, the 16 MB push of 49,000 series with 300-byte label values,
// and histograms.
var costShapes = []costShape{
	{name: "short labels", series: 40_000, value: 8},
	{name: "300-byte labels", series: 49_000, value: 300},
	{name: "histograms", series: 4_000, value: 8, histogram: true},
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
		mfs := sortedFamilies(parseText(t, text))
		for _, f := range []struct {
			name, contentType string
			body              []byte
		}{{"text", "", []byte(text)}, {"protobuf", string(fmtProtoDelim), encodeDelimited(t, mfs...)}} {
			t.Run(sh.name+"/"+f.name, func(t *testing.T) {
				allocated, b := pushAllocates(t, f.body, f.contentType)
				charged := DecodeCost(b, f.contentType)
				lines := strings.Count(text, "\n") - 1
				t.Logf("%d-byte body, %d sample lines: allocated %d (%d per line), charged %d (%.2f×)",
					len(f.body), lines, allocated, allocated/int64(lines), charged, float64(charged)/float64(allocated))
				require.GreaterOrEqual(t, charged, allocated, "the charge covers the push")
				require.LessOrEqual(t, charged, allocated*3/2, "the charge is not far above the push")
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
	require.Equal(t, 2+3+2+1+1+2, protoItems(body))
	require.Equal(t, 2+3+2, protoItems(body[:len(body)-1]), "a broken family counts what parses before it")
	extra := &dto.MetricFamily{Name: proto.String("x")}
	require.Equal(t, 0, protoItems(encodeDelimited(t, extra)))
}

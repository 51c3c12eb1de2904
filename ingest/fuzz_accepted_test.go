package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/store"
)

// FuzzAcceptedPushScrapes pushes a body to a real store and, when the
// push is accepted, checks that every scrape format still parses the way
// Prometheus would: the text exposition with the Prometheus libraries'
// own parser, the protobuf one by decoding it back, and all of them (the
// OpenMetrics one included) as valid UTF-8 in every HELP, label name and
// label value. A push that breaks that takes a whole peer off Prometheus.
func FuzzAcceptedPushScrapes(f *testing.F) {
	f.Add([]byte("# HELP m fine\n# TYPE m gauge\nm{a=\"b\"} 1\n"), false)
	f.Add([]byte("# HELP m bad \xff help\n# TYPE m gauge\nm 1\n"), false)
	f.Add([]byte("m{a=\"\xc3\x28\"} 1\n"), false)
	bad := &dto.MetricFamily{Name: proto.String("m"), Help: proto.String("bad \xff"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("\xfe")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	f.Add(encodeDelimited(f, bad), true)
	f.Add(readTestdata(f, "node.prom"), false)
	f.Fuzz(func(t *testing.T, body []byte, asProto bool) {
		st := newRealStore(t, store.Config{})
		in, _ := newTestIngester(t, DefaultConfig(), st)
		ct := "text/plain; version=0.0.4"
		if asProto {
			ct = string(fmtProtoDelim)
		}
		_, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/fuzz", ContentType: ct, Body: bytes.NewReader(body)})
		if err != nil {
			require.Contains(t, []int{400, 413}, statusOf(err), "%v", err)
			return
		}
		requireScrapesParse(t, st)
	})
}

// requireScrapesParse checks every scrape format of st.
func requireScrapesParse(t *testing.T, st *store.Store) {
	t.Helper()
	var text, pb, om bytes.Buffer
	require.NoError(t, st.WriteExposition(&text, store.FormatText, nil))
	require.True(t, utf8.Valid(text.Bytes()), "text exposition is not valid UTF-8:\n%q", text.String())
	parser := expfmt.NewTextParser(model.LegacyValidation)
	_, err := parser.TextToMetricFamilies(bytes.NewReader(text.Bytes()))
	require.NoError(t, err, "text exposition:\n%s", text.String())

	require.NoError(t, st.WriteExposition(&om, store.FormatOpenMetrics, nil))
	require.True(t, utf8.Valid(om.Bytes()), "OpenMetrics exposition is not valid UTF-8:\n%q", om.String())

	require.NoError(t, st.WriteExposition(&pb, store.FormatProtoDelim, nil))
	dec := expfmt.NewDecoder(&pb, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.True(t, utf8.ValidString(mf.GetHelp()), "HELP of %q: %q", mf.GetName(), mf.GetHelp())
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				require.True(t, utf8.ValidString(lp.GetName()) && utf8.ValidString(lp.GetValue()), "label %q=%q", lp.GetName(), lp.GetValue())
			}
		}
	}
}

// A HELP that is not UTF-8 is refused with 400 naming the field, on the
// text and the protobuf path; before, it was stored and Prometheus marked
// the whole peer down.
func TestInvalidUTF8HelpRefused(t *testing.T) {
	bad := &dto.MetricFamily{Name: proto.String("m"), Help: proto.String("bad \xff"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	for _, tt := range []struct {
		name, ct string
		body     []byte
	}{
		{"text", "", []byte("# HELP m bad \xff\n# TYPE m gauge\nm 1\n")},
		{"protobuf", string(fmtProtoDelim), encodeDelimited(t, bad)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newRealStore(t, store.Config{})
			in, _ := newTestIngester(t, DefaultConfig(), st)
			_, err := in.Handle(context.Background(), Request{Method: http.MethodPut, Path: "/job/j", ContentType: tt.ct, Body: bytes.NewReader(tt.body)})
			require.Equal(t, http.StatusBadRequest, statusOf(err))
			require.ErrorContains(t, err, `metric family "m" has a HELP text that is not valid UTF-8: "bad \xff"`)
			requireScrapesParse(t, st)
		})
	}
}

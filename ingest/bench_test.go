package ingest

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/pushring/pushring/store"
)

// benchPath is an edge node's push path as client_golang builds it.
const benchPath = "/job/node/instance/edge-node-00042/zone@base64/ZXUtd2VzdC0x"

func benchmarkDecode(b *testing.B, body []byte, contentType, encoding string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		fams, err := DecodeBody(bytes.NewReader(body), contentType, encoding, DefaultMaxBodyBytes)
		if err != nil || len(fams) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeText decodes a 40-series node push (counters, gauges, one
// histogram) in text format.
func BenchmarkDecodeText(b *testing.B) {
	benchmarkDecode(b, readTestdata(b, "node.prom"), "text/plain; version=0.0.4", "")
}

// BenchmarkDecodeTextGzip is BenchmarkDecodeText with a gzipped body;
// SetBytes counts the compressed size.
func BenchmarkDecodeTextGzip(b *testing.B) {
	benchmarkDecode(b, gzipBytes(b, readTestdata(b, "node.prom")), "text/plain; version=0.0.4", "gzip")
}

// BenchmarkDecodeProto decodes the same push as client_golang sends it.
func BenchmarkDecodeProto(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	benchmarkDecode(b, encodeDelimited(b, sortedFamilies(node)...), string(fmtProtoDelim), "")
}

// BenchmarkParseGroupingPath parses a path into a key and its hash.
func BenchmarkParseGroupingPath(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPath)))
	var sink uint64
	for b.Loop() {
		k, err := ParseGroupingPath(benchPath)
		if err != nil {
			b.Fatal(err)
		}
		sink ^= k.Hash()
	}
	_ = sink
}

// BenchmarkSanitize sanitises the node push under a two-label key. The
// body carries no grouping label, so Sanitize only adds label pairs, in new
// slices; restoring each metric's original slice (a pointer write per
// metric, on the clock) gives every iteration the same fresh input.
func BenchmarkSanitize(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	key, err := ParseGroupingPath(benchPath)
	if err != nil {
		b.Fatal(err)
	}
	var metrics []*dto.Metric
	var labels [][]*dto.LabelPair
	for _, mf := range node {
		for _, m := range mf.GetMetric() {
			metrics = append(metrics, m)
			labels = append(labels, m.Label)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, m := range metrics {
			m.Label = labels[i]
		}
		Sanitize(node, key)
	}
	if got := len(metrics[0].GetLabel()); got != len(labels[0])+3 {
		b.Fatalf("sanitised metric has %d labels, want %d", got, len(labels[0])+3)
	}
}

// nopStore accepts every push.
type nopStore struct{}

func (nopStore) Apply(store.Push) error     { return nil }
func (nopStore) Delete(store.GroupKey) bool { return false }

// BenchmarkHandle is one protobuf push through the ingester to a store that
// does nothing: path, decode, sanitise and the self-metrics.
func BenchmarkHandle(b *testing.B) {
	node := parseText(b, string(readTestdata(b, "node.prom")))
	body := encodeDelimited(b, sortedFamilies(node)...)
	in, err := New(Config{MaxBodyBytes: DefaultMaxBodyBytes}, nopStore{}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, err := in.Handle(context.Background(), Request{
			Method: http.MethodPut, Path: benchPath, ContentType: string(fmtProtoDelim), Body: bytes.NewReader(body),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

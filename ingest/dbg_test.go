package ingest

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestDbgSlow(t *testing.T) {
	b, _ := os.ReadFile("/tmp/fz-last.bin")
	body := b[len("false|"):]
	for _, enc := range []string{"", "gzip", "snappy"} {
		in := body
		if enc == "gzip" { in = gzipBytes(t, body) }
		if enc == "snappy" { in = snappyBytes(t, body) }
		start := time.Now()
		_, err := DecodeBody(bytes.NewReader(in), "text/plain", enc, 1<<20)
		t.Log(enc, time.Since(start), err)
	}
	start := time.Now()
	_, err := DecodeBody(bytes.NewReader(body), "text/plain", "", int64(len(body)-1))
	t.Log("limit", time.Since(start), err)
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"strings"
	"testing"

	"github.com/golang/snappy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

const sampleText = `# HELP up Whether it is up.
# TYPE up gauge
up{instance="a"} 1
# TYPE jobs_total counter
jobs_total 42
`

// requireFamiliesEqual compares two decoded pushes family by family.
func requireFamiliesEqual(t *testing.T, want, got map[string]*dto.MetricFamily) {
	t.Helper()
	require.Len(t, got, len(want))
	for name, mf := range want {
		require.Contains(t, got, name)
		require.True(t, proto.Equal(mf, got[name]), "family %s:\nwant %v\ngot  %v", name, mf, got[name])
	}
}

func TestDecodeBodyContentType(t *testing.T) {
	want := parseText(t, sampleText)
	protoBody := encodeDelimited(t, sortedFamilies(want)...)
	tests := []struct {
		name        string
		contentType string
		proto       bool // whether the type selects the protobuf decoder
	}{
		{"client_golang default", string(fmtProtoDelim), true},
		{"params swapped", "application/vnd.google.protobuf; encoding=delimited; proto=io.prometheus.client.MetricFamily", true},
		{"upper-case type and names", "APPLICATION/VND.GOOGLE.PROTOBUF; PROTO=io.prometheus.client.MetricFamily; ENCODING=delimited", true},
		{"quoted values", `application/vnd.google.protobuf; proto="io.prometheus.client.MetricFamily"; encoding="delimited"`, true},
		{"no spaces", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", true},
		{"extra escaping parameter", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores", true},
		{"encoding text", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text", false},
		{"missing proto", "application/vnd.google.protobuf; encoding=delimited", false},
		{"missing encoding", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily", false},
		{"value case differs", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=Delimited", false},
		{"none", "", false},
		{"text plain", "text/plain; version=0.0.4; charset=utf-8", false},
		{"openmetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8", false},
		{"garbage", ";;;=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.proto, isDelimitedProto(tt.contentType))
			body := []byte(sampleText)
			if tt.proto {
				body = protoBody
			}
			got, err := DecodeBody(bytes.NewReader(body), tt.contentType, "", 0)
			require.NoError(t, err)
			requireFamiliesEqual(t, want, got)
		})
	}
}

// A protobuf body sent with a type that does not select protobuf is parsed
// as text and fails there, as in the Pushgateway.
func TestDecodeBodyProtoAsText(t *testing.T) {
	body := encodeDelimited(t, sortedFamilies(parseText(t, sampleText))...)
	_, err := DecodeBody(bytes.NewReader(body), "application/vnd.google.protobuf; encoding=text", "", 0)
	require.ErrorIs(t, err, ErrBadRequest)
	require.ErrorContains(t, err, "text format parsing error in line 1: ")
}

func TestDecodeBodyContentEncoding(t *testing.T) {
	text := readTestdata(t, "node.prom")
	want := parseText(t, string(text))
	protoBody := encodeDelimited(t, sortedFamilies(want)...)
	tests := []struct {
		name     string
		encoding string
		encode   func(testing.TB, []byte) []byte
	}{
		{"none", "", nil},
		{"identity", "identity", nil},
		{"gzip", "gzip", gzipBytes},
		{"GZIP", "GZIP", gzipBytes},
		{"Gzip", "Gzip", gzipBytes},
		{"snappy", "snappy", snappyBytes},
		{"Snappy", "Snappy", snappyBytes},
	}
	for _, tt := range tests {
		for _, format := range []struct {
			contentType string
			body        []byte
		}{{"text/plain; version=0.0.4", text}, {string(fmtProtoDelim), protoBody}} {
			t.Run(tt.name+"/"+format.contentType, func(t *testing.T) {
				body := format.body
				if tt.encode != nil {
					body = tt.encode(t, body)
				}
				got, err := DecodeBody(bytes.NewReader(body), format.contentType, tt.encoding, DefaultMaxBodyBytes)
				require.NoError(t, err)
				requireFamiliesEqual(t, want, got)
			})
		}
	}
}

// An encoding this peer cannot decode is a 415 naming the ones it can; the
// Pushgateway parses such a body as if it were plain (docs/compat.md).
func TestDecodeBodyUnsupportedEncoding(t *testing.T) {
	for _, enc := range []string{"br", "deflate", "zstd", "gzip, br"} {
		_, err := DecodeBody(bytes.NewReader([]byte(sampleText)), "", enc, 0)
		require.ErrorIs(t, err, ErrUnsupportedEncoding, enc)
		require.Equal(t, 415, statusOf(err))
		require.EqualError(t, err, fmt.Sprintf("unsupported Content-Encoding %q; send the body uncompressed or with one of: gzip, snappy, identity", enc))
	}
}

func TestDecodeBodyEncodingErrors(t *testing.T) {
	gz := gzipBytes(t, []byte(sampleText))
	tests := []struct {
		name     string
		body     []byte
		encoding string
		want     string // error text, the 400 body
		cause    error  // if set, the error must also wrap this
	}{
		{"gzip empty body", nil, "gzip", "EOF", io.EOF},
		{"gzip shorter than header", []byte("abc"), "gzip", "unexpected EOF", io.ErrUnexpectedEOF},
		{"gzip invalid header", []byte("this is not gzip at all"), "gzip", "gzip: invalid header", gzip.ErrHeader},
		{"gzip truncated stream", gz[:len(gz)-4], "gzip", "unexpected EOF", io.ErrUnexpectedEOF},
		{"gzip bad checksum", append(append([]byte{}, gz[:len(gz)-8]...), 0, 0, 0, 0, 0, 0, 0, 0), "gzip", "gzip: invalid checksum", gzip.ErrChecksum},
		{"gzip trailing garbage", append(append([]byte{}, gz...), "garbage after the stream"...), "gzip", "gzip: invalid header", gzip.ErrHeader},
		{"snappy not framed", []byte("not snappy at all"), "snappy", "snappy: corrupt input", snappy.ErrCorrupt},
		{"raw snappy block", snappy.Encode(nil, []byte(sampleText)), "snappy", "snappy: corrupt input", snappy.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBody(bytes.NewReader(tt.body), "", tt.encoding, DefaultMaxBodyBytes)
			require.ErrorIs(t, err, ErrBadRequest)
			require.EqualError(t, err, tt.want)
			require.ErrorIs(t, err, tt.cause)
			require.Equal(t, 400, statusOf(err))
		})
	}
}

func TestDecodeBodyLimit(t *testing.T) {
	const limit = 64 << 10
	zeros := make([]byte, 4<<20)
	text := readTestdata(t, "node.prom")
	tests := []struct {
		name     string
		body     []byte
		encoding string
		max      int64
		want     string // "" for success
	}{
		{"gzip bomb", gzipBytes(t, zeros), "gzip", limit,
			"push body exceeds the limit of 65536 bytes after decompression; raise --push.max-body-bytes"},
		{"snappy bomb", snappyBytes(t, zeros), "snappy", limit,
			"push body exceeds the limit of 65536 bytes after decompression; raise --push.max-body-bytes"},
		{"plain body over limit", zeros[:limit+1], "", limit,
			"push body exceeds the limit of 65536 bytes; raise --push.max-body-bytes"},
		// Empty gzip members decompress to nothing, however many arrive.
		{"compressed body over limit", bytes.Repeat(gzipBytes(t, nil), limit/16), "gzip", limit,
			"compressed push body exceeds the limit of 65536 bytes; raise --push.max-body-bytes"},
		{"exactly at limit", text, "", int64(len(text)), ""},
		{"one byte over", text, "", int64(len(text)) - 1,
			fmt.Sprintf("push body exceeds the limit of %d bytes; raise --push.max-body-bytes", len(text)-1)},
		{"gzip exactly at limit", gzipBytes(t, text), "gzip", int64(len(text)), ""},
		{"gzip one byte over", gzipBytes(t, text), "gzip", int64(len(text)) - 1,
			fmt.Sprintf("push body exceeds the limit of %d bytes after decompression; raise --push.max-body-bytes", len(text)-1)},
		{"no limit", text, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBody(bytes.NewReader(tt.body), "", tt.encoding, tt.max)
			if tt.want == "" {
				require.NoError(t, err)
				requireFamiliesEqual(t, parseText(t, string(text)), got)
				return
			}
			require.ErrorIs(t, err, ErrTooLarge)
			require.NotErrorIs(t, err, ErrBadRequest)
			require.EqualError(t, err, tt.want)
			require.Equal(t, 413, statusOf(err))
		})
	}
}

// The limit stops reading: a bomb is not decompressed past it.
func TestDecodeBodyStopsReadingAtLimit(t *testing.T) {
	const limit = 1 << 10
	body := &countingReader{r: bytes.NewReader(make([]byte, 1<<20))}
	_, _, n, err := decodeBody(body, "", "", limit, false, false)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Equal(t, int64(limit), n)
	require.LessOrEqual(t, body.n, int64(limit+1))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDecodeBodyText(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // error text; "" for success
	}{
		// The Pushgateway's error texts (expfmt's), returned unchanged.
		{"no final newline", "m 1", "text format parsing error in line 1: unexpected end of input stream"},
		{"crlf", "m 1\r\n", `text format parsing error in line 1: expected float as value, got "1\r"`},
		{"dash in name", "a-b 1\n", `text format parsing error in line 1: expected float as value, got "-b"`},
		{"type after samples", "tas 1\n# TYPE tas counter\n", `text format parsing error in line 2: second TYPE line for metric name "tas", or TYPE reported after samples`},
		{"invalid utf8 label value", "m{a=\"\xff\"} 1\n", `text format parsing error in line 1: invalid label value "\xff"`},
		{"bad escape", "m{a=\"x\\ty\"} 1\n", `text format parsing error in line 1: invalid escape sequence '\t'`},
		{"duplicate label", "rlm4{a=\"1\",a=\"2\"} 1\n", `text format parsing error in line 1: duplicate label names for metric "rlm4"`},
		{"reserved label", "m{__name__=\"1\"} 1\n", `text format parsing error in line 1: label name "__name__" is reserved`},
		{"quoted utf8 metric name", "{\"my.metric\"} 1\n", `text format parsing error in line 1: invalid metric name "my.metric"`},
		{"openmetrics exemplar", "m_total 1 # {trace_id=\"a\"} 1\n", `text format parsing error in line 1: expected integer as timestamp, got "#"`},
		// Accepted bodies.
		{"empty", "", ""},
		{"blank and comment lines", "\n   \n# just a comment\nm 1\n", ""},
		{"timestamp is parsed (store rejects)", "m 1 1700000000000\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBody(strings.NewReader(tt.body), "", "", DefaultMaxBodyBytes)
			if tt.want != "" {
				require.ErrorIs(t, err, ErrBadRequest)
				require.EqualError(t, err, tt.want)
				var pe expfmt.ParseError
				require.ErrorAs(t, err, &pe)
				return
			}
			require.NoError(t, err)
			requireFamiliesEqual(t, parseText(t, tt.body), got)
		})
	}
}

// Families without samples are dropped, so a TYPE-only body is an empty
// push (an update, not a delete): an empty map that is not nil.
func TestDecodeBodyTypeOnly(t *testing.T) {
	for _, body := range []string{"# TYPE foo counter\n# HELP foo Some help.\n", ""} {
		got, err := DecodeBody(strings.NewReader(body), "", "", 0)
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Empty(t, got)
	}
	got, err := DecodeBody(nil, "", "", 0)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)
}

// OpenMetrics is not an input format: "# EOF" is a comment and a _total
// sample becomes its own untyped family, as in the Pushgateway.
func TestDecodeBodyOpenMetricsIsText(t *testing.T) {
	body := "# TYPE foo counter\nfoo_total 1\n# EOF\n"
	got, err := DecodeBody(strings.NewReader(body), "application/openmetrics-text; version=1.0.0", "", 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, dto.MetricType_UNTYPED, got["foo_total"].GetType())
}

func TestDecodeBodyProto(t *testing.T) {
	fams := parseText(t, sampleText)
	first := &dto.MetricFamily{Name: proto.String("pbdup"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("i"), Value: proto.String("0")}}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}}
	second := &dto.MetricFamily{Name: proto.String("pbdup"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("i"), Value: proto.String("1")}}, Gauge: &dto.Gauge{Value: proto.Float64(2)}}}}
	empty := &dto.MetricFamily{Name: proto.String("no_metrics"), Type: dto.MetricType_COUNTER.Enum()}
	good := encodeDelimited(t, sortedFamilies(fams)...)

	t.Run("duplicate family last wins", func(t *testing.T) {
		got, err := DecodeBody(bytes.NewReader(encodeDelimited(t, first, second)), string(fmtProtoDelim), "", 0)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.True(t, proto.Equal(second, got["pbdup"]))
	})
	t.Run("family without metrics is kept", func(t *testing.T) {
		got, err := DecodeBody(bytes.NewReader(encodeDelimited(t, empty)), string(fmtProtoDelim), "", 0)
		require.NoError(t, err)
		require.True(t, proto.Equal(empty, got["no_metrics"]))
	})
	t.Run("empty body", func(t *testing.T) {
		got, err := DecodeBody(bytes.NewReader(nil), string(fmtProtoDelim), "", 0)
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Empty(t, got)
	})

	corrupt := []struct {
		name string
		body []byte
		want string
	}{
		{"truncated message", good[:len(good)-3], "unexpected EOF"},
		{"size only", []byte{0x05}, "unexpected EOF"},
		{"truncated varint", []byte{0x80}, "unexpected EOF"},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), "proto: variable length integer overflow"},
		{"huge declared size", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}, "unexpected EOF"},
		{"invalid wire data", []byte{0x02, 0xff, 0xff}, "proto: cannot parse invalid wire-format data"},
		{"text sent as protobuf", []byte(sampleText), ""},
	}
	for _, tt := range corrupt {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBody(bytes.NewReader(tt.body), string(fmtProtoDelim), "", DefaultMaxBodyBytes)
			require.ErrorIs(t, err, ErrBadRequest)
			require.Equal(t, 400, statusOf(err))
			if tt.want != "" {
				// protobuf-go varies the spacing of its messages on purpose.
				require.Equal(t, strings.Join(strings.Fields(tt.want), " "), strings.Join(strings.Fields(err.Error()), " "))
			}
		})
	}
}

// The pooled decoder must not carry state from one push into the next.
func TestDecodeBodyReuse(t *testing.T) {
	text := readTestdata(t, "node.prom")
	want := parseText(t, string(text))
	gz := gzipBytes(t, text)
	for range 5 {
		_, err := DecodeBody(bytes.NewReader([]byte("garbage{")), "", "gzip", 0)
		require.Error(t, err)
		_, err = DecodeBody(bytes.NewReader(make([]byte, 100)), "", "", 10)
		require.ErrorIs(t, err, ErrTooLarge)
		got, err := DecodeBody(bytes.NewReader(gz), "", "GZIP", 1<<20)
		require.NoError(t, err)
		requireFamiliesEqual(t, want, got)
	}
}

// prometheus/common v0.70.1 dereferences the previous line's metric when a
// label set follows a TYPE line without a metric name. It must be a 400,
// and must never touch families an earlier push returned.
func TestDecodeBodyParserPanic(t *testing.T) {
	earlier, err := DecodeBody(strings.NewReader("# TYPE s counter\ns{a=\"1\"} 1\n"), "", "", 0)
	require.NoError(t, err)
	before := proto.Clone(earlier["s"])
	for _, body := range []string{
		"# TYPE s counter\n{a=\"b\"} 1\n",
		"#TYPE s \n{C0000000=\"0z0\"}0000000000",
	} {
		_, err := DecodeBody(strings.NewReader(body), "", "", 0)
		require.ErrorIs(t, err, ErrBadRequest)
		require.ErrorContains(t, err, "text format parsing error")
	}
	require.True(t, proto.Equal(before, earlier["s"]))
}

// client_golang's Content-Type is recognised without parsing; its
// variations still are, by parsing.
func TestIsDelimitedProto(t *testing.T) {
	require.Equal(t, string(expfmt.NewFormat(expfmt.TypeProtoDelim)), protoContentType)
	for ct, want := range map[string]bool{
		protoContentType: true,
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited":   true,
		"Application/Vnd.Google.Protobuf; Proto=io.prometheus.client.MetricFamily; Encoding=delimited": true,
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily":                     false,
		"text/plain; version=0.0.4": false,
		"":                          false,
	} {
		require.Equal(t, want, isDelimitedProto(ct), "%q", ct)
	}
	// The shortcut for text types decides as parsing does.
	parsed := func(ct string) bool {
		mt, params, err := mime.ParseMediaType(ct)
		return err == nil && mt == protoMediaType && params["proto"] == protoMessage && params["encoding"] == protoEncoding
	}
	for _, ct := range []string{
		"text/plain; version=0.0.4; charset=utf-8", "TEXT/plain", "Text/", "text/", "text", " text/plain",
		"\u212aext/plain", "text/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
		" application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
		"\tapplication/vnd.google.protobuf;encoding=delimited;proto=io.prometheus.client.MetricFamily",
	} {
		require.Equal(t, parsed(ct), isDelimitedProto(ct), "%q", ct)
	}
}

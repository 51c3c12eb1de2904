package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// requireFrontRoundTrip codes lines and, when they are coded, decodes
// them back after a prefix already in the buffer.
func requireFrontRoundTrip(t testing.TB, lines lineSeq) (coded []byte, ok bool) {
	t.Helper()
	var text []byte
	for l := lines; ; {
		line, ok := l.next()
		if !ok {
			break
		}
		text = append(text, line...)
	}
	size := measureLines(lines).coded
	if size < 0 {
		return nil, false
	}
	coded = appendFrontCoded([]byte("junk"), lines)
	require.Equal(t, "junk", string(coded[:4]), "appendFrontCoded appends")
	coded = coded[4:]
	require.Len(t, coded, size)
	require.LessOrEqual(t, len(coded), len(text)-len(text)/frontCodeMin, "coded only when it saves an eighth")
	got := appendFrontDecoded([]byte("head"), coded, len(text))
	require.Equal(t, "head"+string(text), string(got))

	// With scratch for the codes, as the builder passes it: measured and
	// coded the same, the scratch reused from a longer text before.
	codes := make([]lineCode, 100)
	lines.codes = &codes
	require.Equal(t, size, measureLines(lines).coded)
	require.Len(t, codes, min(bytes.Count(text, []byte("\n")), maxKeptCodes))
	require.Equal(t, coded, appendFrontCoded(nil, lines))
	return coded, true
}

func TestFrontCode(t *testing.T) {
	long := strings.Repeat("x", 300) // a shared prefix past one varint byte
	for _, tc := range []struct {
		name, text string
		coded      bool
	}{
		{"empty", "", false},
		{"one line", `m{instance="a",job="j"} 1` + "\n", false},
		{"no final newline", "m{a=\"1\"} 1\nm{a=\"2\"} 2", false},
		{"nothing shared", "a 1\nb 2\nc 3\n", false},
		{"node lines", `edge_filesystem_avail_bytes{instance="edge-000001",job="loadtest",mountpoint="/mnt/disk0"} 2.2647772601e+11
edge_filesystem_avail_bytes{instance="edge-000001",job="loadtest",mountpoint="/mnt/disk1"} 3.92956056406e+11
edge_filesystem_avail_bytes{instance="edge-000001",job="loadtest",mountpoint="/mnt/disk10"} 7.8120962447e+11
`, true},
		{"histogram", `h_bucket{job="j",le="0.1"} 1
h_bucket{job="j",le="1"} 2
h_bucket{job="j",le="+Inf"} 3
h_sum{job="j"} 1.5
h_count{job="j"} 3
`, true},
		{"long shared prefix", "m{a=\"" + long + "1\"} 1\nm{a=\"" + long + "2\"} 2\nm{a=\"" + long + "\"} 3\n", true},
		{"equal lines", "m 1\nm 1\nm 1\nm 1\nm 1\nm 1\nm 1\nm 1\n", true},
		{"a line the prefix of the next", "m_a 1\nm_a 1 2\nm_a 1 2 3\n", true},
		{"empty lines", "\n\n\n\n\n\n\n\n\n\n", false},
		{"labels after the one that differs", networkLines, true},
		{"spaces in label values", `m{a="x 1",b="the same  words"} 1
m{a="x 2",b="the same  words"} 2
m{a="x 3",b="the same  words"} 3 4
m{a="x 3",b="the same  words"} 3
`, true},
		{"a repeat longer than the line before's labels", "m{a=\"1\",b=\"yyyyyyyyyy\"} 1\nm{a=\"1\",b=\"yyyyyyyyyyyyyyyyyyyy\"} 1\nm{a=\"10\",b=\"yyyyyyyyyy\"} 1\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := requireFrontRoundTrip(t, lineSeq{text: []byte(tc.text)})
			require.Equal(t, tc.coded, ok)
		})
	}
}

// networkLines are lines whose differing label sorts before the grouping
// labels: each repeats the end of the labels of the line before.
const networkLines = `edge_network_receive_bytes_total{device="eth0",instance="edge-000001",job="loadtest"} 21496
edge_network_receive_bytes_total{device="eth1",instance="edge-000001",job="loadtest"} 45964
edge_network_receive_bytes_total{device="eth10",instance="edge-000001",job="loadtest"} 64331
edge_network_receive_bytes_total{device="eth11",instance="edge-000001",job="loadtest"} 1.5699e+20
`

// TestCodeLineCopiesTheLabelsAfterADifference: a line whose differing
// label comes before the grouping labels is coded as its prefix, the
// label value, a copy of the labels after it and the value, and the
// family takes less than half its text.
func TestCodeLineCopiesTheLabelsAfterADifference(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(networkLines, "\n"), "\n")
	c := codeLine([]byte(lines[0]), []byte(lines[1]))
	repeated := `",instance="edge-000001",job="loadtest"}`
	require.Equal(t, lineCode{shared: len(`edge_network_receive_bytes_total{device="eth`), repeat: len(repeated),
		from: strings.Index(lines[0], repeated), value: strings.LastIndexByte(lines[1], ' ')}, c)
	require.Equal(t, 1+1+1+1+1+1+len(" 45964\n"), c.size(len(lines[1])+1))

	require.Equal(t, lineCode{}, codeLine(nil, []byte(lines[0])), "nothing before the first line")
	require.Equal(t, minRepeat, codeLine([]byte(`m{a="1",b="x"} 1`), []byte(`m{a="2",b="x"} 1`)).repeat)
	require.Zero(t, codeLine([]byte(`m{a="1",b=""} 1`), []byte(`m{a="2",b=""} 1`)).repeat,
		"a repeat shorter than minRepeat is not worth a copy")

	coded, ok := requireFrontRoundTrip(t, lineSeq{text: []byte(networkLines)})
	require.True(t, ok)
	require.Less(t, len(coded), len(networkLines)/2)
}

// TestFrontCodeManyLines: a family of more lines than the code scratch
// keeps codes the rest again, to the same bytes.
func TestFrontCodeManyLines(t *testing.T) {
	var text []byte
	for i := range maxKeptCodes + 200 {
		text = fmt.Appendf(text, "m{device=\"eth%d\",instance=\"edge-000001\",job=\"loadtest\"} %d\n", i, i)
	}
	coded, ok := requireFrontRoundTrip(t, lineSeq{text: text})
	require.True(t, ok)
	require.Less(t, len(coded), len(text)/3)
}

func TestSharedSuffix(t *testing.T) {
	naive := func(a, b string) int {
		i := 0
		for i < len(a) && i < len(b) && a[len(a)-1-i] == b[len(b)-1-i] {
			i++
		}
		return i
	}
	base := "0123456789abcdefghijklmnopqrstuvwxyz"
	for i := 0; i <= len(base); i++ {
		for j := 0; j <= i; j++ {
			a := base[j:]
			b := base[:max(i-1, 0)] + "!" + base[i:]
			require.Equal(t, naive(a, b), sharedSuffix([]byte(a), []byte(b)), "%q %q", a, b)
			require.Equal(t, naive(a, base[i:]), sharedSuffix([]byte(a), []byte(base[i:])), "%q %q", a, base[i:])
		}
	}
}

func TestSharedPrefix(t *testing.T) {
	naive := func(a, b string) int {
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		return i
	}
	base := "0123456789abcdefghijklmnopqrstuvwxyz"
	for i := 0; i <= len(base); i++ {
		for j := i; j <= len(base); j++ {
			a := base[:j]
			b := base[:i] + "!" + base[min(i+1, len(base)):]
			require.Equal(t, naive(a, b), sharedPrefix([]byte(a), []byte(b)), "%q %q", a, b)
			require.Equal(t, naive(a, base[:i]), sharedPrefix([]byte(a), []byte(base[:i])))
		}
	}
}

// FuzzFrontCode: every text of whole lines decodes to itself.
func FuzzFrontCode(f *testing.F) {
	f.Add([]byte("m{a=\"1\"} 1\nm{a=\"2\"} 2\n"))
	f.Add(bytes.Repeat([]byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"), 9))
	f.Add([]byte("\n\n"))
	f.Add([]byte(networkLines))
	f.Fuzz(func(t *testing.T, text []byte) {
		if len(text) > 0 && text[len(text)-1] != '\n' {
			text = append(text, '\n')
		}
		requireFrontRoundTrip(t, lineSeq{text: text})
		// The same lines in reverse order, as buildSimple hands over
		// metrics it sorted.
		var order []simpleChunk
		for start := 0; start < len(text); {
			end := start + bytes.IndexByte(text[start:], '\n') + 1
			order = append(order, simpleChunk{textStart: start, textEnd: end})
			start = end
		}
		slices.Reverse(order)
		requireFrontRoundTrip(t, lineSeq{text: text, order: order})
	})
}

// frontPush is a group's push in the text format: a histogram, a
// summary and labelled gauges, every line with the grouping labels.
const frontPush = `# HELP edge_request_duration_seconds Latency.
# TYPE edge_request_duration_seconds histogram
edge_request_duration_seconds_bucket{instance="%[1]s",job="edge",le="0.1"} 1
edge_request_duration_seconds_bucket{instance="%[1]s",job="edge",le="1"} 4
edge_request_duration_seconds_bucket{instance="%[1]s",job="edge",le="+Inf"} 5
edge_request_duration_seconds_sum{instance="%[1]s",job="edge"} 3.25
edge_request_duration_seconds_count{instance="%[1]s",job="edge"} 5
# TYPE edge_rpc_seconds summary
edge_rpc_seconds{instance="%[1]s",job="edge",quantile="0.5"} 0.01
edge_rpc_seconds{instance="%[1]s",job="edge",quantile="0.99"} 0.25
edge_rpc_seconds_sum{instance="%[1]s",job="edge"} 12
edge_rpc_seconds_count{instance="%[1]s",job="edge"} 400
# TYPE edge_filesystem_avail_bytes gauge
edge_filesystem_avail_bytes{instance="%[1]s",job="edge",mountpoint="/mnt/disk0"} 2.2647772601e+11
edge_filesystem_avail_bytes{instance="%[1]s",job="edge",mountpoint="/mnt/disk1"} 3.92956056406e+11
edge_filesystem_avail_bytes{instance="%[1]s",job="edge",mountpoint="/mnt/disk10"} 7.8120962447e+11
edge_filesystem_avail_bytes{instance="%[1]s",job="edge",mountpoint="/mnt/disk2"} 8.63697854186e+11
# TYPE edge_up gauge
edge_up{instance="%[1]s",job="edge"} 1
`

// TestStoreFrontCodesItsText: a group's multi-line families keep their
// text front-coded, one-line families keep it as it is, and every reader
// of the text (scrapes in each format, gzipped or not, and the byte count
// of --store.max-bytes) sees the lines expfmt writes.
func TestStoreFrontCodesItsText(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	at := time.Unix(1_700_000_000, 0)
	pushed := map[GroupKey]map[string]*dto.MetricFamily{}
	for i := range 3 {
		instance := fmt.Sprintf("edge-%06d", i)
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(fmt.Sprintf(frontPush, instance)))
		require.NoError(t, err)
		k := NewGroupKey(map[string]string{"job": "edge", "instance": instance})
		pushed[k] = fams
		require.NoError(t, s.Apply(Push{Key: k, Replace: true, Families: fams, Time: at}))
	}
	coded, text := 0, 0
	for k, g := range s.groups {
		for _, sl := range g.slots {
			f, name := sl.fam, sl.fam.name
			lines := textOf(f)
			require.Len(t, lines, f.textSize())
			require.Equal(t, int(f.samples), bytes.Count(lines, []byte{'\n'}))
			if mf := pushed[k][name]; mf != nil {
				var want bytes.Buffer
				_, err := expfmt.MetricFamilyToText(&want, mf)
				require.NoError(t, err)
				require.Equal(t, string(want.Bytes()[bytes.Index(want.Bytes(), []byte("\n"+name))+1:]), string(lines), name)
			}
			if f.samples == 1 {
				require.Zero(t, f.textLen, "%s has one line", name)
				require.Equal(t, string(f.data), string(lines))
				continue
			}
			require.NotZero(t, f.textLen, "%s has %d lines", name, f.samples)
			coded += len(f.data)
			text += len(lines)
		}
	}
	require.Less(t, coded, text*2/3, "the lines of a family share their name and grouping labels")
	require.NoError(t, s.CheckInvariants())
	_, series := s.Stats()
	for _, f := range []Format{FormatText, FormatProtoDelim, FormatOpenMetrics, FormatText.WithEscaping(model.UnderscoreEscaping)} {
		for round := range 2 { // gzipped segments compressed, then kept
			var plain, zipped bytes.Buffer
			require.NoError(t, s.WriteExposition(&plain, f, nil))
			require.NoError(t, s.WriteExpositionGzip(&zipped, f, nil))
			require.Equal(t, plain.String(), string(gunzipOne(t, zipped.Bytes())), "%s, round %d", f, round)
			if f == FormatText {
				p := expfmt.NewTextParser(model.LegacyValidation)
				got, err := p.TextToMetricFamilies(&plain)
				require.NoError(t, err)
				n := 0
				for _, mf := range got {
					n += len(mf.Metric)
				}
				require.Equal(t, 3*(1+1+4+1), n-2*3, "every metric but the push-time gauges")
				require.Equal(t, 3*(5+4+4+1)+2*3, series)
			}
		}
	}
}

// BenchmarkFrontDecode decodes the front-coded lines of an edge node's
// 13-line gauge families: one whose differing label follows the grouping
// labels, one whose differing label comes before them.
func BenchmarkFrontDecode(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"mountpoint", "edge_filesystem_avail_bytes{instance=\"edge-000001\",job=\"loadtest\",mountpoint=\"/mnt/disk%d\"} %d.5e+11\n"},
		{"device", "edge_network_receive_bytes_total{device=\"eth%d\",instance=\"edge-000001\",job=\"loadtest\"} %d.5e+11\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var text []byte
			for i := range 13 {
				text = fmt.Appendf(text, bc.line, i, i)
			}
			size := measureLines(lineSeq{text: text}).coded
			require.Positive(b, size)
			coded := appendFrontCoded(nil, lineSeq{text: text})
			b.SetBytes(int64(len(text)))
			var out []byte
			for b.Loop() {
				out = appendFrontDecoded(out[:0], coded, len(text))
			}
			b.ReportMetric(float64(len(coded))/float64(len(text)), "coded/text")
		})
	}
}

// TestFamilyLayout holds family to what its comment says: the value fits
// the 128-byte size class, and what a text scrape reads of it (data and
// textLen) lies in its first 64 bytes. A group's value fits the 128-byte
// class, and the shape of its last push (repeat.go) the 64-byte one.
func TestFamilyLayout(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(group{}), uintptr(128))
	require.LessOrEqual(t, unsafe.Sizeof(repeatShape{}), uintptr(64))
	var f family
	require.LessOrEqual(t, unsafe.Sizeof(f), uintptr(128))
	require.LessOrEqual(t, unsafe.Offsetof(f.textLen)+unsafe.Sizeof(f.textLen), uintptr(64), "data and textLen")
}

// TestPushTimeRoundTrip: a family gives its push time back as it was set,
// zone included, as far as the JSON API and the persistence file can
// tell: local (time.Now), UTC, a fixed offset (a persistence file written
// in another zone), and the zero time.
func TestPushTimeRoundTrip(t *testing.T) {
	at := time.Unix(1_765_000_000, 123_456_789)
	decoded := func(in time.Time) time.Time { // as a persistence file decodes it
		b, err := in.MarshalBinary()
		require.NoError(t, err)
		var out time.Time
		require.NoError(t, out.UnmarshalBinary(b))
		return out
	}
	for name, want := range map[string]time.Time{
		"now":             time.Now(),
		"local":           at,
		"utc":             at.UTC(),
		"east":            at.In(time.FixedZone("", 5*3600)),
		"west, half hour": at.In(time.FixedZone("", -(3*3600 + 30*60))),
		"decoded east":    decoded(at.In(time.FixedZone("", 9*3600))),
		"decoded utc":     decoded(at.UTC()),
		"zero":            {},
	} {
		t.Run(name, func(t *testing.T) {
			var f family
			f.setPushTime(want)
			got := f.pushTime()
			require.True(t, want.Equal(got), "%v, want %v", got, want)
			require.Equal(t, want.Round(0).String(), got.String())
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			gotJSON, err := json.Marshal(got)
			require.NoError(t, err)
			require.Equal(t, string(wantJSON), string(gotJSON))
			wantBin, err := want.MarshalBinary()
			require.NoError(t, err)
			gotBin, err := got.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, wantBin, gotBin, "the persistence file's bytes")
			require.Equal(t, want.IsZero(), got.IsZero())
		})
	}
}

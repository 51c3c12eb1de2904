package ingest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/loadtest"
)

// scannedTemplate scans body as a repeat would and makes its template,
// the only one of the protoTemplates it returns.
func scannedTemplate(t testing.TB, body []byte) (*protoTemplate, *protoTemplates) {
	t.Helper()
	sc := &repeatScan{}
	require.True(t, sc.scanProto(body, false), "the body scans")
	ts := &protoTemplates{}
	ts.keep(sc)
	tmpl := ts.find(body)
	require.NotNil(t, tmpl)
	return tmpl, ts
}

// costOf returns the decode cost of b if a template is b but for the
// values: what DecodeCost charges through matching.
func (ts *protoTemplates) costOf(b []byte) (protoCost, bool) {
	if t := ts.matching(b); t != nil {
		return t.cost, true
	}
	return protoCost{}, false
}

// requireTemplateIsScan reads b with tmpl, the template of ts for b's
// length, and, where it reads it, requires what scanProto reads and the
// decode cost protoItems measures. It reports whether tmpl read b.
func requireTemplateIsScan(t testing.TB, tmpl *protoTemplate, ts *protoTemplates, b []byte) bool {
	t.Helper()
	byTemplate := &repeatScan{}
	cost, costOK := ts.costOf(b)
	if !tmpl.read(byTemplate, b) {
		require.False(t, costOK, "a cost for a body the template does not read")
		return false
	}
	require.True(t, costOK)
	require.Equal(t, protoItems(b), cost, "the decode cost of % x", b)
	scanned := &repeatScan{}
	require.True(t, scanned.scanProto(b, false), "a body the template read does not scan: % x", b)
	require.Equal(t, scanned.shape, byTemplate.shape, "shape of % x", b)
	require.Equal(t, len(scanned.values), len(byTemplate.values))
	for i, v := range scanned.values {
		require.Equal(t, math.Float64bits(v), math.Float64bits(byTemplate.values[i]), "value %d of % x", i, b)
	}
	return true
}

// A template reads the bodies of its structure with other values as the
// scan does, and nothing else: bodies of random structures (protoFamilies),
// pushed again with new values and, some of them, a byte changed.
func TestProtoTemplateIsTheScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	specials := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	value := func() float64 {
		if rng.IntN(10) == 0 {
			return specials[rng.IntN(len(specials))]
		}
		return float64(rng.IntN(1000)) / 4
	}
	count := func() uint64 {
		if rng.IntN(10) == 0 {
			return []uint64{1 << 53, 1<<53 + 1, 127, 128, 16383, 16384}[rng.IntN(6)]
		}
		return uint64(rng.IntN(100))
	}
	read, tried, flipped, structures := 0, 0, 0, 0
	for range 1000 {
		structure := rng.Uint64()
		first := encodeDelimited(t, protoFamilies(rand.New(rand.NewPCG(structure, 0)), value, count)...)
		if !(&repeatScan{}).scanProto(first, false) {
			continue // the full way's, which makes no template
		}
		structures++
		tmpl, ts := scannedTemplate(t, first)
		require.True(t, requireTemplateIsScan(t, tmpl, ts, first), "the template reads its own body")
		for range 8 {
			b := encodeDelimited(t, protoFamilies(rand.New(rand.NewPCG(structure, 0)), value, count)...)
			if len(b) != len(first) {
				continue // a count took another size
			}
			tried++
			if requireTemplateIsScan(t, tmpl, ts, b) {
				read++
			}
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			if requireTemplateIsScan(t, tmpl, ts, b) {
				flipped++ // a byte of a value
			}
		}
	}
	t.Logf("%d bodies of %d structures tried: %d read, %d with a byte changed read", tried, structures, read, flipped)
	require.Greater(t, tried, 1500)
	require.Greater(t, read, tried*3/4, "bodies of the structure with new values are read")
	require.Greater(t, flipped, 0, "a changed value byte is still read")
	require.Less(t, flipped, read, "a changed byte elsewhere is not")
}

// The node's pushes, as client_golang sends them, are read by the
// template of the first.
func TestProtoTemplateReadsNodePushes(t *testing.T) {
	bodies, err := loadtest.NodeBodies(loadtest.FormatProtobuf, 40, 1, 20)
	require.NoError(t, err)
	tmpl, ts := scannedTemplate(t, bodies[0])
	read := 0
	for _, b := range bodies {
		if len(b) == len(bodies[0]) && requireTemplateIsScan(t, tmpl, ts, b) {
			read++
		}
	}
	require.Greater(t, read, len(bodies)/2)
}

// A template keeps its place while it serves, and gives it up to another
// body of its length modulo protoTemplateCount once it misses far more
// often than it hits.
func TestProtoTemplatesKeep(t *testing.T) {
	bodies, err := loadtest.NodeBodies(loadtest.FormatProtobuf, 40, 1, 2)
	require.NoError(t, err)
	a := bodies[0]
	b := append(append([]byte(nil), a...), make([]byte, protoTemplateCount)...) // same index, another length
	scan := func(body []byte) *repeatScan {
		sc := &repeatScan{}
		if !sc.scanProto(body, false) {
			sc.base = body // b's padding does not scan; keep needs a base
		}
		return sc
	}
	var ts protoTemplates
	ts.keep(scan(a))
	first := ts.find(a)
	require.NotNil(t, first)
	require.True(t, first.read(&repeatScan{}, a))
	for range templateMisses + 2 {
		require.Nil(t, ts.find(b), "another length is a miss")
	}
	ts.keep(scan(a))
	require.Same(t, first, ts.find(a), "misses up to twice the hits and templateMisses keep it")
	for range 2 {
		require.Nil(t, ts.find(b))
	}
	ts.keep(scan(a))
	require.NotSame(t, first, ts.find(a), "past them it is replaced")

	stray := scan(a)
	stray.slot(make([]byte, 3, cap(stray.base)+9), false) // not a part of the body
	require.True(t, stray.badSlots)
	var none protoTemplates
	none.keep(stray)
	require.Nil(t, none.find(a), "a scan that lost a value's place makes none")

	var big protoTemplates
	big.keep(scan(make([]byte, maxTemplateBytes+1)))
	require.Nil(t, big[(maxTemplateBytes+1)%protoTemplateCount].Load(), "bodies over maxTemplateBytes make none")
}

func FuzzProtoTemplate(f *testing.F) {
	// Small bodies of every kind of family, pairs of one structure.
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 1))
		value := func() float64 { return float64(rng.IntN(300)) }
		count := func() uint64 { return uint64(rng.IntN(300)) }
		f.Add(encodeDelimited(f, protoFamilies(rand.New(rand.NewPCG(seed, 0)), value, count)...),
			encodeDelimited(f, protoFamilies(rand.New(rand.NewPCG(seed, 0)), value, count)...))
	}
	f.Fuzz(func(t *testing.T, first, b []byte) {
		sc := &repeatScan{}
		if len(first) != len(b) || !sc.scanProto(first, false) {
			return
		}
		var ts protoTemplates
		ts.keep(sc)
		if tmpl := ts.find(b); tmpl != nil {
			requireTemplateIsScan(t, tmpl, &ts, b)
		}
	})
}

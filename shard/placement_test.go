package shard_test

import (
	"cmp"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/shard"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// requireGolden compares got with testdata/<name>, or rewrites it with -update.
func requireGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./shard -run %s -update to create it", t.Name())
	require.Equal(t, string(want), string(got))
}

// peers returns members pushring-0 … pushring-(n-1), as a StatefulSet names
// its pods.
func peers(n int) []shard.Member {
	ms := make([]shard.Member, n)
	for i := range ms {
		id := fmt.Sprintf("pushring-%d", i)
		ms[i] = shard.Member{ID: id, GRPCAddr: id + ".pushring:9092", HTTPAddr: id + ".pushring:9091"}
	}
	return ms
}

func placement(t testing.TB, ms []shard.Member) *shard.Placement {
	t.Helper()
	p, err := shard.NewPlacement(ms)
	require.NoError(t, err)
	return p
}

func ids(ms []shard.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// goldenKeyEncodings are grouping keys as store encodes them (labels
// sorted by name, name 0xFF value 0xFF …); their xxhash64 is what
// store.GroupKey.Hash returns and what placement places.
var goldenKeyEncodings = []string{
	"job\xffbatch",
	"instance\xffhost:9100\xffjob\xffbatch",
	"e\xff\xffjob\xffb64\xffx\xff/var/tmp",
	"instance\xff\xffjob\xffΠρ\xffzone\xffeu-west-1",
	"instance\xffedge-node-00042\xffjob\xffkubeedge\xffnode\xffedge-node-00042",
	"instance\xffedge-node-00043\xffjob\xffkubeedge\xffnode\xffedge-node-00043",
}

// goldenKeyHashes are the key hashes the golden file pins: the keys above,
// the extremes, and a fixed spread of the rest.
func goldenKeyHashes() []uint64 {
	hs := []uint64{0, 1, ^uint64(0)}
	for _, enc := range goldenKeyEncodings {
		hs = append(hs, xxhash.Sum64String(enc))
	}
	for i := uint64(1); len(hs) < 50; i++ {
		hs = append(hs, i*0x9e3779b97f4a7c15) // Weyl sequence: spread over the range
	}
	return hs
}

// TestPlacementGolden pins the rendezvous score and so the owner of every
// group: peers of different versions must agree on owners, and a change
// moves every group. Never regenerate this file to make a change pass.
func TestPlacementGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# score(id, h) = xxhash64(id ‖ h as 8 bytes little-endian)\n")
	for _, id := range []string{"", "pushring-0", "a-much-longer-peer-name-of-a-statefulset-pod-in-some-namespace"} {
		for _, h := range []uint64{0, 0x0123456789abcdef} {
			fmt.Fprintf(&b, "score %q %016x = %016x\n", id, h, shard.Score(id, h))
		}
	}
	p := placement(t, peers(5))
	fmt.Fprintf(&b, "# peers %s\n# key hash, owner, top 3 owners\n", strings.Join(ids(p.Members()), " "))
	for _, h := range goldenKeyHashes() {
		fmt.Fprintf(&b, "%016x %s %s\n", h, p.Owner(h).ID, strings.Join(ids(p.Owners(h, 3)), ","))
	}
	requireGolden(t, "placement.golden", []byte(b.String()))
}

// TestScoreDefinition checks Score against its definition for IDs of every
// length up to 300 bytes (xxhash64 takes other paths from 32 bytes on).
// TestOwnersMatchReference then checks Placement against Score.
func TestScoreDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for n := range 300 {
		id := strings.Repeat("p", n)
		h := rng.Uint64()
		want := xxhash.Sum64(binary.LittleEndian.AppendUint64([]byte(id), h))
		require.Equal(t, want, shard.Score(id, h), "id of %d bytes", n)
	}
}

// referenceOwners ranks all members the slow, obvious way.
func referenceOwners(ms []shard.Member, h uint64) []shard.Member {
	ranked := slices.Clone(ms)
	slices.SortFunc(ranked, func(a, b shard.Member) int {
		if c := cmp.Compare(shard.Score(b.ID, h), shard.Score(a.ID, h)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ranked
}

func TestOwnersMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{1, 2, 5, 20} {
		ms := peers(n)
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		p := placement(t, ms)
		for range 200 {
			h := rng.Uint64()
			ref := referenceOwners(ms, h)
			require.Equal(t, ref[0], p.Owner(h))
			for k := 1; k <= n+1; k++ {
				require.Equal(t, ref[:min(k, n)], p.Owners(h, k), "%d peers, top %d", n, k)
			}
			require.Nil(t, p.Owners(h, 0))
		}
	}
}

func TestNewPlacement(t *testing.T) {
	p := placement(t, []shard.Member{{ID: "b"}, {ID: "c", GRPCAddr: "c:9092"}, {ID: "a"}})
	require.Equal(t, []string{"a", "b", "c"}, ids(p.Members()))
	require.Equal(t, 3, p.Len())
	c, ok := p.Member("c")
	require.True(t, ok)
	require.Equal(t, "c:9092", c.GRPCAddr)
	_, ok = p.Member("d")
	require.False(t, ok)

	_, err := shard.NewPlacement([]shard.Member{{ID: "a"}, {ID: ""}})
	require.ErrorIs(t, err, shard.ErrEmptyMemberID)
	_, err = shard.NewPlacement([]shard.Member{{ID: "a"}, {ID: "b"}, {ID: "a", GRPCAddr: "x"}})
	require.ErrorIs(t, err, shard.ErrDuplicateMemberID)

	empty := placement(t, nil)
	require.Equal(t, shard.Member{}, empty.Owner(42))
	require.Nil(t, empty.Owners(42, 3))
}

// group is a pushed group: its key hash and how many series it holds.
type group struct {
	hash   uint64
	series int
}

// fleet returns n groups from a seeded RNG, with series counts like the
// motivating fleet: 80 % node pushes of 30–50 series (node exporters,
// KubeEdge edge nodes), 20 % batch jobs of 1–10.
func fleet(n int, seed uint64) []group {
	rng := rand.New(rand.NewPCG(seed, seed))
	gs := make([]group, n)
	for i := range gs {
		s := 30 + rng.IntN(21)
		if rng.IntN(5) == 0 {
			s = 1 + rng.IntN(10)
		}
		gs[i] = group{hash: rng.Uint64(), series: s}
	}
	return gs
}

// TestBalance checks that every peer holds its share of the series within
// 10 % of the mean.
func TestBalance(t *testing.T) {
	gs := fleet(10_000, 3)
	for _, n := range []int{3, 5, 10} {
		t.Run(fmt.Sprintf("peers=%d", n), func(t *testing.T) {
			p := placement(t, peers(n))
			perPeer := map[string]int{}
			total := 0
			for _, g := range gs {
				perPeer[p.Owner(g.hash).ID] += g.series
				total += g.series
			}
			require.Len(t, perPeer, n, "every peer owns groups")
			mean := float64(total) / float64(n)
			lo, hi := total, 0
			for _, s := range perPeer {
				lo, hi = min(lo, s), max(hi, s)
			}
			t.Logf("%d peers: %d series, mean %.0f per peer, min/mean %.3f, max/mean %.3f",
				n, total, mean, float64(lo)/mean, float64(hi)/mean)
			require.LessOrEqual(t, float64(hi)/mean, 1.10)
			require.GreaterOrEqual(t, float64(lo)/mean, 0.90)
		})
	}
}

// TestMovementOnJoin checks that a new peer takes about 1/(N+1) of the
// groups, only onto itself, and that the replica lists change only by the
// new peer stepping in.
func TestMovementOnJoin(t *testing.T) {
	gs := fleet(10_000, 4)
	for _, n := range []int{3, 5, 10} {
		t.Run(fmt.Sprintf("peers=%d", n), func(t *testing.T) {
			all := peers(n + 1)
			newcomer := all[n].ID
			before, after := placement(t, all[:n]), placement(t, all)
			moved, betweenOld, reordered := 0, 0, 0
			for _, g := range gs {
				ob, oa := before.Owner(g.hash), after.Owner(g.hash)
				if ob != oa {
					moved++
					if oa.ID != newcomer {
						betweenOld++
					}
				}
				kept := slices.DeleteFunc(after.Owners(g.hash, 3), func(m shard.Member) bool { return m.ID == newcomer })
				if !slices.Equal(before.Owners(g.hash, 3)[:len(kept)], kept) {
					reordered++
				}
			}
			require.Zero(t, betweenOld, "groups that moved between old peers")
			require.Zero(t, reordered, "groups whose replicas were reordered among old peers")
			requireFraction(t, "join", moved, len(gs), 1/float64(n+1))
		})
	}
}

// TestMovementOnLeave checks that when a peer goes, exactly its groups move.
func TestMovementOnLeave(t *testing.T) {
	gs := fleet(10_000, 5)
	for _, n := range []int{3, 5, 10} {
		t.Run(fmt.Sprintf("peers=%d", n), func(t *testing.T) {
			all := peers(n)
			gone := all[1].ID
			before := placement(t, all)
			after := placement(t, slices.Delete(slices.Clone(all), 1, 2))
			moved, wrong := 0, 0
			for _, g := range gs {
				ob, oa := before.Owner(g.hash), after.Owner(g.hash)
				if ob != oa {
					moved++
				}
				switch {
				case ob.ID != gone && oa != ob: // a group of a staying peer moved
					wrong++
				case ob.ID == gone && oa != before.Owners(g.hash, 2)[1]: // not to its first replica
					wrong++
				}
			}
			require.Zero(t, wrong, "groups that moved although their owner stayed, or not to their first replica")
			requireFraction(t, "leave", moved, len(gs), 1/float64(n))
		})
	}
}

// requireFraction checks that moved/total is within 15 % of want (several
// binomial standard deviations at 10,000 groups) and logs it.
func requireFraction(t *testing.T, what string, moved, total int, want float64) {
	t.Helper()
	got := float64(moved) / float64(total)
	t.Logf("%s: %d of %d groups moved (%.4f, ideal %.4f)", what, moved, total, got, want)
	require.InDelta(t, want, got, 0.15*want)
}

func BenchmarkOwner(b *testing.B) {
	hs := fleet(1024, 6)
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			p := placement(b, peers(n))
			b.ReportAllocs()
			var sink shard.Member
			i := 0
			for b.Loop() {
				sink = p.Owner(hs[i&1023].hash)
				i++
			}
			_ = sink
		})
	}
}

func BenchmarkOwners3(b *testing.B) {
	hs := fleet(1024, 7)
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			p := placement(b, peers(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = p.Owners(hs[i&1023].hash, 3)
				i++
			}
		})
	}
}

func BenchmarkRingOwner(b *testing.B) {
	hs := fleet(1024, 8)
	r := shard.NewRing(placement(b, peers(10)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = r.Owner(hs[i&1023].hash)
			i++
		}
	})
}

// TestWithout checks that Without is the placement of the other members:
// the owners a leaving peer hands its groups to.
func TestWithout(t *testing.T) {
	all := peers(5)
	p := placement(t, all)
	gone := all[2].ID
	want := placement(t, slices.Delete(slices.Clone(all), 2, 3))
	w := p.Without(gone)
	require.True(t, w.Equal(want))
	require.Equal(t, 5, p.Len(), "p is unchanged")
	for _, g := range fleet(2_000, 3) {
		require.Equal(t, want.Owner(g.hash), w.Owner(g.hash))
	}
	require.Same(t, p, p.Without("nobody"))
}

func TestPlacementWith(t *testing.T) {
	p, err := shard.NewPlacement([]shard.Member{{ID: "a"}, {ID: "c"}})
	require.NoError(t, err)
	q := p.With(shard.Member{ID: "b", GRPCAddr: "x"})
	require.Equal(t, []shard.Member{{ID: "a"}, {ID: "b", GRPCAddr: "x"}, {ID: "c"}}, q.Members())
	require.Equal(t, 2, p.Len(), "p is unchanged")
	require.Same(t, p, p.With(shard.Member{ID: "a"}), "a member already in p")
	for h := range uint64(200) {
		if q.Owner(h).ID != "b" {
			require.Equal(t, p.Owner(h), q.Owner(h), "only the keys b now wins move")
		}
	}
}

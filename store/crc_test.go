package store

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 64, 1000, 70_000} {
		a := make([]byte, rng.IntN(5000))
		b := make([]byte, n)
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc32.ChecksumIEEE(append(append([]byte{}, a...), b...))
		got := crcCombine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), shiftOp(uint64(len(b))))
		require.Equal(t, want, got, "len(a)=%d len(b)=%d", len(a), n)
	}
}

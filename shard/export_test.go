package shard

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Score is the definition of the rendezvous score of member id for key
// hash h, frozen by the golden tests: xxhash64 of the bytes of id followed
// by h as 8 little-endian bytes. Placement computes the same from a
// precomputed digest; the tests check it against this.
func Score(id string, h uint64) uint64 {
	var kb [8]byte
	binary.LittleEndian.PutUint64(kb[:], h)
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(id) // never fails
	_, _ = d.Write(kb[:])
	return d.Sum64()
}

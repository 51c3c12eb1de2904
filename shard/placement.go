package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Member is one live peer as placement sees it. Placement depends on ID
// only; the addresses say where to reach the peer once it is chosen.
//
// Member is comparable and cheap to copy.
type Member struct {
	// ID is the stable peer name (--cluster.peer-name, by default the
	// hostname, which is the pod name in a StatefulSet). It decides which
	// groups the peer owns, so a restart under the same ID moves nothing.
	ID string
	// GRPCAddr is the host:port other peers dial to forward pushes to this
	// peer. Empty when the peer's metadata could not be read: such a peer
	// still owns its share of groups (every peer must agree on owners
	// whatever it can decode), but cannot be dialled.
	GRPCAddr string
	// HTTPAddr is the host:port of the peer's Pushgateway HTTP API.
	HTTPAddr string
}

// Errors of NewPlacement.
var (
	ErrEmptyMemberID     = errors.New("member with an empty id")
	ErrDuplicateMemberID = errors.New("duplicate member id")
)

// Placement is an immutable snapshot of the live members that decides which
// peers own a key hash, by rendezvous (highest-random-weight) hashing:
//
//	score(member, key) = xxhash64(member.ID ‖ uint64 key hash, 8 bytes little-endian)
//
// The owners of a key are the members ordered by decreasing score; equal
// scores rank the smaller ID first. The first is the owner; the next ones
// are where replicas go. Adding a member moves to it exactly the keys it
// now scores highest on (about 1/N of them) and moves nothing else;
// removing one moves only the keys it owned.
//
// The score function is frozen: every peer of a cluster, of every version,
// must compute the same owners, and a change would move every group.
// testdata/placement.golden pins it; never regenerate that file to make a
// change pass.
//
// A Placement is safe for concurrent use: nothing changes it after
// NewPlacement returns. Methods never block.
type Placement struct {
	members []Member // sorted by ID, unique
	// digests[i] has hashed members[i].ID; a lookup copies it and adds the
	// key hash, which is the same hash as the definition (export_test.go's
	// Score: xxhash64 of id then h as 8 little-endian bytes) at about half the cost.
	digests []xxhash.Digest
}

// NewPlacement returns the placement over members, in any order. IDs must
// be non-empty and unique. members is not retained.
func NewPlacement(members []Member) (*Placement, error) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for i, m := range ms {
		if m.ID == "" {
			return nil, fmt.Errorf("new placement: %w", ErrEmptyMemberID)
		}
		if i > 0 && ms[i-1].ID == m.ID {
			return nil, fmt.Errorf("new placement: %w %q", ErrDuplicateMemberID, m.ID)
		}
	}
	p := &Placement{members: ms, digests: make([]xxhash.Digest, len(ms))}
	for i, m := range ms {
		p.digests[i].Reset()
		_, _ = p.digests[i].WriteString(m.ID) // never fails
	}
	return p, nil
}

// Len returns the number of members.
func (p *Placement) Len() int { return len(p.members) }

// Members returns the members sorted by ID. The slice is new.
func (p *Placement) Members() []Member { return slices.Clone(p.members) }

// Member returns the member with the given ID, and whether there is one.
func (p *Placement) Member(id string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(p.members, id, func(m Member, id string) int {
		return strings.Compare(m.ID, id)
	})
	if !ok {
		return Member{}, false
	}
	return p.members[i], true
}

// Without returns the placement of the same members except id: where keys
// go once that member has left. It returns p itself when id is not a
// member.
func (p *Placement) Without(id string) *Placement {
	i, ok := slices.BinarySearchFunc(p.members, id, func(m Member, id string) int {
		return strings.Compare(m.ID, id)
	})
	if !ok {
		return p
	}
	return &Placement{
		members: slices.Delete(slices.Clone(p.members), i, i+1),
		digests: slices.Delete(slices.Clone(p.digests), i, i+1),
	}
}

// With returns the placement of the same members and m: where keys go once
// m serves. It returns p itself when a member with m's ID is in p.
func (p *Placement) With(m Member) *Placement {
	if _, ok := p.Member(m.ID); ok || m.ID == "" {
		return p
	}
	q, _ := NewPlacement(append(p.Members(), m)) // IDs are unique and non-empty
	return q
}

// Equal reports whether p and o have the same members with the same
// addresses.
func (p *Placement) Equal(o *Placement) bool { return slices.Equal(p.members, o.members) }

// Owner returns the member that owns keys with hash h: the member with the
// highest score, Owners(h, 1)[0] without allocating. It returns the zero
// Member when the placement is empty.
func (p *Placement) Owner(h uint64) Member {
	if len(p.members) == 0 {
		return Member{}
	}
	best, bestScore := 0, p.score(0, h)
	// Members are sorted by ID, so keeping the first of equal scores ranks
	// the smaller ID first.
	for i := 1; i < len(p.members); i++ {
		if s := p.score(i, h); s > bestScore {
			best, bestScore = i, s
		}
	}
	return p.members[best]
}

// smallOwners is how many owners Owners ranks without a heap allocation
// for their scores; replication factors are far below it.
const smallOwners = 8

// Owners returns the n members that own keys with hash h, the owner first,
// in decreasing score. It returns all members when there are fewer than n,
// and nil when n < 1. The slice is new.
func (p *Placement) Owners(h uint64, n int) []Member {
	n = min(n, len(p.members))
	if n < 1 {
		return nil
	}
	var buf [smallOwners]uint64
	scores := buf[:0]
	if n > smallOwners {
		scores = make([]uint64, 0, n)
	}
	var topBuf [smallOwners]int
	top := topBuf[:0] // indexes into p.members, best first
	if n > smallOwners {
		top = make([]int, 0, n)
	}
	for i := range p.members {
		s := p.score(i, h)
		if len(top) == n && s <= scores[n-1] {
			continue // ties keep the earlier, smaller ID
		}
		// Insertion into a list of at most n; n is a replication factor.
		j := len(top)
		if j < n {
			top, scores = append(top, 0), append(scores, 0)
		} else {
			j = n - 1
		}
		for ; j > 0 && scores[j-1] < s; j-- {
			top[j], scores[j] = top[j-1], scores[j-1]
		}
		top[j], scores[j] = i, s
	}
	owners := make([]Member, n)
	for k, i := range top {
		owners[k] = p.members[i]
	}
	return owners
}

// score is the rendezvous score of member i for key hash h.
func (p *Placement) score(i int, h uint64) uint64 {
	d := p.digests[i] // a copy: p is shared by every reader
	var kb [8]byte
	binary.LittleEndian.PutUint64(kb[:], h)
	_, _ = d.Write(kb[:])
	return d.Sum64()
}
